//! `redress ops stuck` as an operator runs it: lists what a service's outbox relay set aside,
//! as text and JSON, and `--release` hands the messages back to the relay.

use std::process::{Command, Output};

use redress_testkit::TestEnv;

fn ops(env: &TestEnv, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_redress"))
        .arg("ops")
        .arg("stuck")
        .args(args)
        .env("REDRESS_DATABASE_URL", env.database_url())
        .env("RUST_LOG", "warn")
        .current_dir(env.dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_messages_are_listed_and_released() {
    let env = TestEnv::start().await.unwrap();
    let pool = env.admin_pool().await.unwrap();
    // The relay's table as every service has it (the platform's plumbing).
    sqlx::raw_sql(
        "CREATE SCHEMA routing;
         CREATE TABLE routing.outbox (
             seq bigserial PRIMARY KEY, msg_id text NOT NULL UNIQUE, subject text NOT NULL,
             payload bytea NOT NULL, traceparent text, tracestate text,
             created_at timestamptz NOT NULL DEFAULT now(),
             attempts integer NOT NULL DEFAULT 0, stuck_reason text, stuck_at timestamptz);
         INSERT INTO routing.outbox (msg_id, subject, payload, attempts, stuck_reason, stuck_at)
         VALUES ('w-1', 'redress.evt.work.resolved.care', '\\x0102', 5,
                 'no stream found for given subject', now()),
                ('w-2', 'redress.evt.work.accepted.care', '\\x01', 0, NULL, NULL);",
    )
    .execute(&pool)
    .await
    .unwrap();

    let text = String::from_utf8(ops(&env, &[]).stdout).unwrap();
    assert!(
        text.contains("routing #1 redress.evt.work.resolved.care (2 bytes, 5 attempts"),
        "{text}"
    );
    assert!(text.contains("no stream found"), "{text}");
    let listed: serde_json::Value = serde_json::from_slice(&ops(&env, &["--json"]).stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["service"], "routing");
    assert_eq!(listed[0]["msg_id"], "w-1");
    assert_eq!(listed[0]["attempts"], 5);

    let released = String::from_utf8(ops(&env, &["--release"]).stdout).unwrap();
    assert!(released.contains("released 1 message"), "{released}");
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM routing.outbox WHERE stuck_at IS NOT NULL OR attempts > 0",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
    let text = String::from_utf8(ops(&env, &[]).stdout).unwrap();
    assert_eq!(text.trim(), "nothing is stuck");
}

/// `redress provision` creates each service's role and schema with the administrator's URL;
/// a service role then logs in with its derived password, works in its own schema and
/// cannot read another's.
#[tokio::test(flavor = "multi_thread")]
async fn provision_is_a_step_of_its_own() {
    use sqlx::Connection as _;
    let env = TestEnv::start().await.unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redress"))
        .arg("provision")
        .env("REDRESS_DATABASE_URL", env.database_url())
        .env("REDRESS_DATABASE__ROLE_SECRET", "a-role-secret")
        .env("RUST_LOG", "warn")
        .current_dir(env.dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.lines().count(), 7, "{text}");
    assert!(
        text.contains("sla-timer: role redress_sla owns schema sla"),
        "{text}"
    );

    // The routing role, as a service with provision = false would connect.
    let mut settings = env.config().settings.database;
    settings.provision = false;
    settings.role_secret = Some("a-role-secret".to_string().into());
    let ident = redress_platform::ServiceIdent {
        name: "routing",
        schema: "routing",
    };
    let options = redress_platform::db::service_options(&settings, &ident).unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(user, "redress_routing");
    sqlx::query("CREATE TABLE probe (id int)")
        .execute(&mut conn)
        .await
        .unwrap();
    let other = sqlx::query("CREATE TABLE intake.probe (id int)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(other.to_string().contains("permission denied"), "{other}");
    // Running it again changes nothing and fails nothing.
    let again = Command::new(env!("CARGO_BIN_EXE_redress"))
        .args(["provision", "routing"])
        .env("REDRESS_DATABASE_URL", env.database_url())
        .env("REDRESS_DATABASE__ROLE_SECRET", "a-role-secret")
        .current_dir(env.dir())
        .output()
        .unwrap();
    assert!(again.status.success());
}
