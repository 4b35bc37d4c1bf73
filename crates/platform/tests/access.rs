//! The broker's accounts as the test harness (and `redress up`) set them: an anonymous
//! connection is refused; a service's credential publishes its own events and not another
//! service's; the operations credential reads stream information and changes nothing.

use std::time::Duration;

use redress_proto::EventKind;
use redress_proto::subjects::Stream;
use redress_testkit::TestEnv;

async fn connect(url: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    redress_client::connect_options(url)
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}

/// Publishes through JetStream and says whether the broker acknowledged it; a publish the
/// broker's permissions refuse never gets an acknowledgement.
async fn stored(client: &async_nats::Client, subject: String) -> bool {
    publish_within(client, subject, Duration::from_secs(30)).await
}

/// Whether a publish the test expects to be refused was stored after all: two seconds, as a
/// refused one never gets an answer however long it waits.
async fn refused(client: &async_nats::Client, subject: String) -> bool {
    !publish_within(client, subject, Duration::from_secs(2)).await
}

async fn publish_within(client: &async_nats::Client, subject: String, wait: Duration) -> bool {
    let mut js = async_nats::jetstream::new(client.clone());
    js.set_timeout(wait);
    match js.publish(subject, "x".into()).await {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_known_users_connect_and_each_publishes_only_its_own() {
    let env = TestEnv::start().await.unwrap();
    // The streams exist once a service has started; the administrator makes them here.
    let admin = connect(env.nats_url()).await.unwrap();
    let subjects = env.subjects();
    let admin_js = async_nats::jetstream::new(admin.clone());
    redress_platform::nats::ensure_streams(&admin_js, &subjects, &env.config().settings.streams)
        .await
        .unwrap();

    let anonymous = env.nats_anonymous_url().expect("the test's own broker");
    let anonymous_attempt = connect(anonymous).await;
    assert!(
        anonymous_attempt.is_err(),
        "an anonymous connection was admitted"
    );
    let wrong = anonymous.replace("nats://", "nats://routing:guess@");
    assert!(
        connect(&wrong).await.is_err(),
        "a wrong password was admitted"
    );

    let routing = connect(env.nats_url_for("routing")).await.unwrap();
    assert!(
        stored(
            &routing,
            subjects.work_event(redress_proto::v1::WorkChange::Accepted, "logistics")
        )
        .await,
        "routing publishes its own work events"
    );
    assert!(
        refused(&routing, subjects.event_of(EventKind::ApprovalDecided)).await,
        "routing published approval's decision"
    );
    assert!(
        refused(&routing, subjects.submit("web")).await,
        "routing published a submission"
    );
    let approval = connect(env.nats_url_for("approval")).await.unwrap();
    assert!(stored(&approval, subjects.event_of(EventKind::ApprovalDecided)).await);
    assert!(
        refused(
            &approval,
            subjects.work_event(redress_proto::v1::WorkChange::Resolved, "logistics")
        )
        .await,
        "approval published a work change"
    );

    // Operations read stream information and cannot delete a stream or publish an event.
    let ops = connect(env.nats_url_for("ops")).await.unwrap();
    let ops_js = async_nats::jetstream::new(ops.clone());
    let mut events = ops_js
        .get_stream(subjects.stream_name(Stream::Events))
        .await
        .unwrap();
    assert!(events.info().await.unwrap().state.messages >= 2);
    let deleted = tokio::time::timeout(
        Duration::from_secs(5),
        ops_js.delete_stream(subjects.stream_name(Stream::Events)),
    )
    .await;
    assert!(
        !matches!(deleted, Ok(Ok(_))),
        "operations deleted the event stream"
    );
    assert!(refused(&ops, subjects.event_of(EventKind::ComplaintClosed)).await);
    // Nor can a service delete a stream.
    let routing_js = async_nats::jetstream::new(routing.clone());
    let deleted = tokio::time::timeout(
        Duration::from_secs(5),
        routing_js.delete_stream(subjects.stream_name(Stream::Submissions)),
    )
    .await;
    assert!(!matches!(deleted, Ok(Ok(_))), "routing deleted a stream");
    assert!(
        admin_js
            .get_stream(subjects.stream_name(Stream::Submissions))
            .await
            .is_ok()
    );
}

/// A department's credential sends its own department's commands and watches its own work;
/// another department's commands and work, and every event, are out of its reach. An
/// adapter submits on its own channel only.
#[tokio::test(flavor = "multi_thread")]
async fn a_department_and_an_adapter_reach_only_their_own() {
    use futures::StreamExt as _;
    let env = TestEnv::start().await.unwrap();
    let subjects = env.subjects();
    let admin = connect(env.nats_url()).await.unwrap();
    redress_platform::nats::ensure_streams(
        &async_nats::jetstream::new(admin.clone()),
        &subjects,
        &env.config().settings.streams,
    )
    .await
    .unwrap();
    // What reaches the routing service's command subjects.
    let mut heard = admin
        .subscribe(format!("{}.>", subjects.command_group("routing")))
        .await
        .unwrap();
    // The subscription is in place once our own message through it comes back (the server
    // handles a connection's messages in order; `flush` only empties our buffer).
    let probe = format!("{}.probe", subjects.command_group("routing"));
    admin.publish(probe.clone(), "p".into()).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(30), heard.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed.subject.as_str(), probe);

    let dept = connect(env.nats_url_for("dept-logistics")).await.unwrap();
    dept.publish(subjects.department_command("accept", "finance"), "x".into())
        .await
        .unwrap();
    dept.publish(
        subjects.department_command("accept", "logistics"),
        "y".into(),
    )
    .await
    .unwrap();
    dept.flush().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(30), heard.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.subject.as_str(),
        subjects.department_command("accept", "logistics"),
        "another department's command got through"
    );
    assert!(
        refused(
            &dept,
            subjects.work_event(redress_proto::v1::WorkChange::Resolved, "logistics")
        )
        .await,
        "a department published a work event"
    );

    let sdk = redress_client::Client::connect(env.nats_url_for("dept-logistics"), &env.root)
        .await
        .unwrap();
    sdk.watch_work("logistics")
        .await
        .expect("a department watches its own work");
    assert!(
        sdk.with_timeout(Duration::from_secs(3))
            .watch_work("finance")
            .await
            .is_err(),
        "a department watched another's work"
    );

    let adapter = connect(env.nats_url_for("adapter-web")).await.unwrap();
    assert!(stored(&adapter, subjects.submit("web")).await);
    assert!(
        refused(&adapter, subjects.submit("sms")).await,
        "an adapter submitted on another channel"
    );
}

/// Only the administrator writes people's keys: a department, the approval tool and the
/// services that verify signatures read them at most.
#[tokio::test(flavor = "multi_thread")]
async fn nobody_but_the_administrator_registers_a_persons_key() {
    let env = TestEnv::start().await.unwrap();
    let key = redress_client::people::PersonKey::generate("mallory").unwrap();
    // A refused request goes unanswered, so each attempt waits out the timeout.
    for user in ["dept-logistics", "approvals", "routing"] {
        let client = redress_client::Client::connect(env.nats_url_for(user), &env.root)
            .await
            .unwrap()
            .with_timeout(Duration::from_secs(1));
        assert!(
            client.register_person(&key).await.is_err(),
            "{user} registered a key"
        );
        assert!(
            client.revoke_person("zhao.min").await.is_err(),
            "{user} revoked a key"
        );
    }
    // The verifying services read the keys.
    let routing = async_nats::connect_with_options(
        env.nats_url_for("routing"),
        redress_client::connect_options(env.nats_url_for("routing")),
    )
    .await
    .unwrap();
    let registry = redress_client::people::Registry::new(routing, &env.subjects());
    assert_eq!(
        registry.public_key("zhao.min").await.unwrap(),
        Some(env.keyring().get("zhao.min").unwrap().public_key())
    );
    assert_eq!(registry.public_key("mallory").await.unwrap(), None);
}

/// Complaints' text keys: intake writes and purges them; the services that read the text
/// and a department's watch read them; nobody else reads, and nobody but intake writes.
#[tokio::test(flavor = "multi_thread")]
async fn only_intake_writes_text_keys_and_only_readers_of_the_text_read_them() {
    use redress_client::sealed::{Lookup, TextKeys, bucket_stream};
    let env = TestEnv::start().await.unwrap();
    let subjects = env.subjects();
    let as_user = |user: &'static str| {
        let url = env.nats_url_for(user);
        async move { connect(url).await.unwrap() }
    };
    let intake = as_user("intake").await;
    let intake_js = async_nats::jetstream::new(intake.clone());
    intake_js
        .get_or_create_stream(bucket_stream(&subjects.text_keys_bucket()))
        .await
        .expect("intake makes the bucket");
    let complaint = uuid::Uuid::now_v7();
    let key_subject = subjects.text_key(&complaint.to_string());
    intake_js
        .publish(key_subject.clone(), vec![9u8; 32].into())
        .await
        .unwrap()
        .await
        .expect("intake writes a key");

    for reader in ["classification", "routing", "dept-logistics"] {
        let keys = TextKeys::new(as_user(reader).await, &subjects);
        assert!(
            matches!(keys.lookup(&complaint).await, Ok(Lookup::Key(_))),
            "{reader} cannot read the key"
        );
        let client = as_user(reader).await;
        assert!(
            refused(&client, key_subject.clone()).await,
            "{reader} overwrote a text key"
        );
    }
    for outsider in ["survey", "sla-timer", "adapter-web", "approvals"] {
        let keys = TextKeys::new(as_user(outsider).await, &subjects);
        let looked = tokio::time::timeout(Duration::from_secs(3), keys.lookup(&complaint)).await;
        assert!(
            !matches!(looked, Ok(Ok(Lookup::Key(_)))),
            "{outsider} read a text key"
        );
    }
    TextKeys::new(intake, &subjects)
        .purge(&complaint)
        .await
        .expect("intake purges a key");
    let routing = TextKeys::new(as_user("routing").await, &subjects);
    assert!(matches!(
        routing.lookup(&complaint).await,
        Ok(Lookup::Erased)
    ));
}
