//! The department's watch on a real broker: only its own assignments, everything assigned
//! while it was away, and nothing twice.

use std::time::Duration;

use redress_client::ClientError;
use redress_proto::subjects;
use redress_proto::v1::{Envelope, WorkChanged, WorkItem, WorkState, envelope::Payload};
use redress_testkit::TestEnv;

async fn env_with_streams() -> TestEnv {
    let env = TestEnv::start().await.unwrap();
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    redress_platform::nats::ensure_streams(&js, &env.subjects(), &env.config().settings.streams)
        .await
        .unwrap();
    env
}

fn assigned(ticket: &str, department: &str, round: u32) -> Envelope {
    Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        complaint_id: uuid::Uuid::now_v7().to_string(),
        producer: "routing".into(),
        payload: Some(Payload::WorkChanged(WorkChanged {
            work: Some(WorkItem {
                work_id: format!("w-{ticket}"),
                ticket: ticket.into(),
                department: department.into(),
                state: WorkState::Assigned as i32,
                round,
                version: 1,
                ..Default::default()
            }),
            actor: "routing".into(),
            note: String::new(),
            change: redress_proto::v1::WorkChange::Assigned as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}

async fn next_ticket(watch: &mut redress_client::WorkWatch) -> (String, u32) {
    let change = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("an item within 10 s")
        .expect("the watch goes on")
        .expect("a decodable item");
    let w = change.work.unwrap();
    (w.ticket, w.round)
}

/// Whether the watch stays quiet for a while (nothing more to deliver).
async fn quiet(watch: &mut redress_client::WorkWatch) -> bool {
    tokio::time::timeout(Duration::from_millis(1500), watch.next())
        .await
        .is_err()
}

#[tokio::test]
async fn a_department_gets_its_assignments_once_including_those_made_while_it_was_away() {
    let env = env_with_streams().await;
    let s = env.subjects();
    // Before the department ever connected.
    env.publish_event(
        s.work_assigned("logistics"),
        &assigned("RD-1", "logistics", 1),
    )
    .await
    .unwrap();
    env.publish_event(s.work_assigned("quality"), &assigned("RD-2", "quality", 1))
        .await
        .unwrap();
    // Not an assignment: the watch is for new work only.
    let mut accepted = assigned("RD-1", "logistics", 1);
    accepted.event_id = uuid::Uuid::now_v7().to_string();
    env.publish_event(
        s.work_event(redress_proto::v1::WorkChange::Accepted, "logistics"),
        &accepted,
    )
    .await
    .unwrap();
    env.publish_event(
        s.work_assigned("logistics"),
        &assigned("RD-3", "logistics", 1),
    )
    .await
    .unwrap();

    let client = env.client().await.unwrap();
    let mut watch = client.watch_work("logistics").await.unwrap();
    assert_eq!(
        watch.consumer_name(),
        subjects::department_consumer("logistics")
    );
    assert_eq!(next_ticket(&mut watch).await, ("RD-1".into(), 1));
    assert_eq!(next_ticket(&mut watch).await, ("RD-3".into(), 1));
    assert!(quiet(&mut watch).await, "only logistics' assignments");
    watch.close().await.unwrap();

    // Offline: a new assignment and a reopened complaint's second round.
    env.publish_event(
        s.work_assigned("logistics"),
        &assigned("RD-4", "logistics", 1),
    )
    .await
    .unwrap();
    env.publish_event(
        s.work_assigned("logistics"),
        &assigned("RD-1", "logistics", 2),
    )
    .await
    .unwrap();

    let mut watch = client.watch_work("logistics").await.unwrap();
    assert_eq!(next_ticket(&mut watch).await, ("RD-4".into(), 1));
    assert_eq!(next_ticket(&mut watch).await, ("RD-1".into(), 2));
    assert!(
        quiet(&mut watch).await,
        "what was acknowledged does not come again"
    );

    // Live: it arrives while the watch waits.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let waiter = tokio::spawn(async move {
        let got = next_ticket(&mut watch).await;
        let _ = tx.send(());
        watch.close().await.unwrap();
        got
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.publish_event(
        s.work_assigned("logistics"),
        &assigned("RD-5", "logistics", 1),
    )
    .await
    .unwrap();
    rx.await.unwrap();
    assert_eq!(waiter.await.unwrap(), ("RD-5".into(), 1));

    // The other department has its own place in the stream.
    let mut quality = client.watch_work("quality").await.unwrap();
    assert_eq!(next_ticket(&mut quality).await, ("RD-2".into(), 1));
    assert!(quiet(&mut quality).await);
}

#[tokio::test]
async fn an_undecodable_item_is_reported_once_and_the_watch_goes_on() {
    let env = env_with_streams().await;
    let s = env.subjects();
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    js.publish(s.work_assigned("finance"), "not protobuf \u{ff}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    env.publish_event(s.work_assigned("finance"), &assigned("RD-9", "finance", 1))
        .await
        .unwrap();
    let client = env.client().await.unwrap();
    let mut watch = client.watch_work("finance").await.unwrap();
    let first = watch.next().await.unwrap();
    assert!(first.is_err(), "{first:?}");
    assert_eq!(next_ticket(&mut watch).await, ("RD-9".into(), 1));
    watch.close().await.unwrap();
    let mut again = client.watch_work("finance").await.unwrap();
    assert!(quiet(&mut again).await, "neither comes back");
}

#[tokio::test]
async fn a_department_key_that_is_not_one_subject_token_is_refused() {
    let env = env_with_streams().await;
    let client = env.client().await.unwrap();
    for bad in ["", "logistics.>", "a b", "Logistics", "*"] {
        match client.watch_work(bad).await {
            Err(ClientError::Invalid { field, .. }) => assert_eq!(field, "department"),
            Err(e) => panic!("{bad:?}: {e:?}"),
            Ok(_) => panic!("{bad:?} was accepted"),
        }
    }
}

/// The complaint text travels sealed; the watch hands it over in clear while the complaint's
/// text key is in the bucket, and marks it erased once the key is purged, as the department
/// system of an erased complaint must see it.
#[tokio::test]
async fn the_watch_opens_the_sealed_text_until_the_complaint_is_erased() {
    use redress_client::sealed::{TextKey, TextKeys};
    let env = env_with_streams().await;
    let s = env.subjects();
    let complaint = uuid::Uuid::now_v7();
    let key_bytes = [42u8; 32];
    env.put_text_key(complaint, key_bytes).await.unwrap();
    let sealed = TextKey::from_bytes(&key_bytes)
        .unwrap()
        .seal("电话 13800138000，包裹三天没到", &complaint);
    let with_text = |round: u32| {
        let mut e = assigned("RD-9", "logistics", round);
        e.complaint_id = complaint.to_string();
        if let Some(Payload::WorkChanged(w)) = e.payload.as_mut() {
            w.work.as_mut().unwrap().sealed_text = sealed.clone();
        }
        e
    };
    env.publish_event(s.work_assigned("logistics"), &with_text(1))
        .await
        .unwrap();

    let client = env.client().await.unwrap();
    let mut watch = client.watch_work("logistics").await.unwrap();
    let item = next_item(&mut watch).await;
    assert_eq!(item.text, "电话 13800138000，包裹三天没到");
    assert!(item.sealed_text.is_empty() && !item.text_erased);

    TextKeys::new(env.nats_client().await.unwrap(), &s)
        .purge(&complaint)
        .await
        .unwrap();
    env.publish_event(s.work_assigned("logistics"), &with_text(2))
        .await
        .unwrap();
    let item = next_item(&mut watch).await;
    assert_eq!((item.round, item.text.as_str()), (2, ""));
    assert!(item.text_erased);
    watch.close().await.unwrap();
}

async fn next_item(watch: &mut redress_client::WorkWatch) -> WorkItem {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("an item within 10 s")
        .expect("the watch goes on")
        .expect("a decodable item")
        .work
        .unwrap()
}
