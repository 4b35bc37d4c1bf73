//! TLS is a configuration switch: a broker that requires TLS (`tls://` URL and
//! `nats.tls_ca_file`) and a PostgreSQL that admits TCP clients over TLS only
//! (`sslmode=verify-full&sslrootcert=…` in `database.url`). Intake runs against both,
//! provisions its role and registers a complaint; clients without TLS, or that do not trust
//! the authority, are refused by both servers.

use std::time::Duration;

use redress_localstack::{NatsServer, NatsUser, PostgresServer, PostgresSpec, make_certs};
use redress_proto::v1::{Complainant, Contact, ContactKind, SubmitComplaint};
use sqlx::{Connection, Executor};

#[tokio::test(flavor = "multi_thread")]
async fn services_speak_tls_to_the_broker_and_the_database_when_configured() {
    redress_testkit::init_test_tracing();
    let dir = tempfile::Builder::new()
        .prefix("redress-tls-")
        .tempdir()
        .unwrap();
    let certs = make_certs(&dir.path().join("certs")).unwrap();
    let ca = certs.ca_cert.clone();

    let password = uuid::Uuid::new_v4().simple().to_string();
    let nats = NatsServer::start_tls(
        &dir.path().join("nats"),
        vec![NatsUser {
            name: "admin".into(),
            password: password.clone(),
            publish: None,
            subscribe: None,
        }],
        certs.clone(),
    )
    .await
    .unwrap();
    let nats_url = format!("tls://admin:{password}@127.0.0.1:{}", nats.port());
    let plain_nats = format!("nats://admin:{password}@127.0.0.1:{}", nats.port());

    let pg = PostgresServer::start(PostgresSpec {
        data_dir: dir.path().join("pg"),
        port: None,
        superuser: "redress".into(),
        password: password.clone(),
        durable: false,
        tls: Some(certs.clone()),
    })
    .await
    .unwrap();
    let base = format!("postgres://redress:{password}@127.0.0.1:{}", pg.port());
    let verified = |db: &str| {
        format!(
            "{base}/{db}?sslmode=verify-full&sslrootcert={}",
            ca.display()
        )
    };

    // Without TLS, or without trusting the authority, neither server lets a client in.
    let refused_nats = async_nats::ConnectOptions::new()
        .user_and_password("admin".into(), password.clone())
        .connection_timeout(Duration::from_secs(5))
        .connect(plain_nats.as_str())
        .await;
    assert!(
        refused_nats.is_err(),
        "a client that does not trust the CA got in"
    );
    for url in [
        format!("{base}/postgres?sslmode=disable"),
        format!("{base}/postgres?sslmode=verify-full"),
    ] {
        assert!(
            sqlx::PgConnection::connect(&url).await.is_err(),
            "{url} was admitted"
        );
    }
    let mut admin = sqlx::PgConnection::connect(&verified("postgres"))
        .await
        .unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(ssl);
    admin.execute("CREATE DATABASE redress").await.unwrap();
    let _ = admin.close().await;

    let config = redress_platform::Config::with_overrides(serde_json::json!({
        "nats": { "url": nats_url, "root": "tls", "tls_ca_file": ca, "connect_timeout_secs": 30 },
        "database": {
            "url": verified("redress"),
            "role_secret": "tls-role-secret",
            "max_connections": 4,
        },
        "intake": {
            "contact_key": redress_testkit::TEST_CONTACT_KEY,
            "allow_test_key": true,
        },
        "playbooks": { "dir": redress_testkit::playbooks_dir() },
    }))
    .unwrap();
    let health = redress_platform::health::Health::default();
    let shutdown = redress_platform::Shutdown::new();
    health.register("intake");
    let ctx = redress_platform::ServiceContext::connect(
        config,
        "intake",
        redress_platform::clock::system(),
        shutdown.clone(),
        health.clone(),
        redress_platform::health::Metrics::default(),
    )
    .await
    .unwrap();
    let intake = tokio::spawn(redress_intake::run(ctx));
    tokio::time::timeout(Duration::from_secs(60), health.wait_ready())
        .await
        .expect("intake ready over TLS");

    let nats_client = redress_client::connect_options_tls(&nats_url, Some(&ca))
        .connect(nats_url.as_str())
        .await
        .unwrap();
    let client = redress_client::Client::from_nats(nats_client, "tls");
    let accepted = client
        .submit(&SubmitComplaint {
            channel: "web".into(),
            external_id: "tls-1".into(),
            complainant: Some(Complainant {
                name: "李娜".into(),
                contact: Some(Contact {
                    kind: ContactKind::Phone as i32,
                    value: "+86 139 0000 1234".into(),
                }),
            }),
            text: "快递三天了还没送到".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut db = sqlx::PgConnection::connect(&verified("redress"))
        .await
        .unwrap();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM intake.complaints WHERE ticket = $1")
            .bind(&accepted.ticket)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(stored, 1);
    // Intake's own role connects over TLS too.
    let role_ssl: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.usename LIKE '%intake%' AND s.ssl",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(role_ssl > 0, "intake's connections are not TLS");

    shutdown.cancel();
    intake.await.unwrap().unwrap();
}
