//! Intake: registers complaints from every channel, issues ticket numbers, keeps complainant
//! history, acknowledges to the complainant and answers status queries.
//!
//! Messages and where they are handled:
//! - `SubmitComplaint` on `<root>.intake.submit.<channel>` (stream): [`handlers::submission`]
//! - `SubmitComplaint` as a request on `<root>.cmd.intake.submit`: [`handlers::submit_command`]
//! - `SupplyEvidence` on `<root>.intake.evidence.<channel>` (stream): [`handlers::evidence`]
//! - `StatusQuery` as a request on `<root>.cmd.intake.status`: [`handlers::status_query`]
//!   (the staff view)
//! - `TrackQuery` as a request on `<root>.cmd.intake.track`: [`handlers::track`] (the
//!   complainant's view, for the ticket and the secret of the acknowledgement)
//! - `EraseComplaint` as a request on `<root>.cmd.intake.erase`: [`handlers::erase`]
//! - `WithdrawComplaint` as a request on `<root>.cmd.intake.withdraw`: [`handlers::withdraw`]
//! - `RespondToReply` as a request on `<root>.cmd.intake.respond`: [`handlers::respond`]
//!   (the complainant's right to deletion; administrator only)
//! - every lifecycle event (classified, work changes, deadlines, approvals, surveys), kept in
//!   the public status and history: [`handlers::status`]

pub mod domain;
pub mod handlers;
mod register;
pub mod rekey;
mod settings;

use std::sync::Arc;

use anyhow::Context as _;
use redress_platform::events::Filter;
use redress_platform::nats::{ConsumeOptions, durable_consumer};
use redress_platform::{Host, ServiceContext, ServiceIdent, Store};
use redress_proto::subjects::{self, Stream};

pub use settings::IntakeSettings;

use domain::crypto::ContactCipher;
use domain::submission::Limits;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "intake",
    schema: "intake",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Associated data of sealed dead-letter payloads: open them with the contact key and this.
pub const DEAD_LETTER_AAD: &[u8] = b"redress-dead-letter";

/// Shared by every handler of one running instance.
pub struct Intake {
    pub ctx: ServiceContext,
    pub store: Store,
    pub settings: IntakeSettings,
    pub cipher: ContactCipher,
    pub limits: Limits,
    pub zone: jiff::tz::TimeZone,
}

impl Intake {
    fn new(
        ctx: ServiceContext,
        store: Store,
        playbooks: &redress_playbook::Playbooks,
    ) -> anyhow::Result<Self> {
        let settings: IntakeSettings = ctx.config.section("intake")?;
        let cipher = settings.cipher()?;
        let zone = jiff::tz::TimeZone::get(&settings.timezone)
            .with_context(|| format!("intake.timezone {:?}", settings.timezone))?;
        // A binding to a playbook this stack does not serve would refuse every submission of
        // the channel: better not to start.
        for (channel, key) in settings
            .channel_playbooks
            .iter()
            .chain([(&"(default)".to_string(), &settings.default_playbook)])
        {
            if playbooks.get(key).is_err() {
                anyhow::bail!(
                    "intake.channel_playbooks / default_playbook: {channel} names playbook {key:?}, which this stack does not serve"
                );
            }
        }
        let limits = Limits {
            max_text_bytes: settings.max_text_bytes,
            max_attachments: settings.max_attachments,
            default_playbook: settings.default_playbook.clone(),
            channel_playbooks: settings.channel_playbooks.clone(),
            playbooks: playbooks.iter().map(|pb| pb.key.clone()).collect(),
            max_received_age: chrono::Duration::days(i64::from(settings.max_received_age_days)),
        };
        Ok(Self {
            ctx,
            store,
            settings,
            cipher,
            limits,
            zone,
        })
    }
}

/// Consumes one of the adapters' streams with intake's durable `consumer`, beside the
/// service's other tasks. What an adapter sends holds a contact or the complainant's words
/// in clear: dead letters are sealed like stored contacts.
async fn adapter_stream<F, Fut>(
    host: &mut Host,
    intake: &Arc<Intake>,
    stream: Stream,
    consumer: &str,
    handle: F,
) -> anyhow::Result<()>
where
    F: Fn(Arc<Intake>, Vec<redress_platform::nats::Delivery>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<redress_platform::nats::Outcome>> + Send + 'static,
{
    let ctx = &intake.ctx;
    let subjects = &ctx.subjects;
    let durable = durable_consumer(
        &ctx.js,
        subjects,
        stream,
        consumer,
        subjects.stream_subjects(stream),
        &ctx.config.settings.consumer,
    )
    .await?;
    let sealer = intake.clone();
    let handler = intake.clone();
    host.beside(redress_platform::nats::consume_batches(
        ctx.js.clone(),
        durable,
        ConsumeOptions {
            service: IDENT.name.into(),
            stream,
            subjects: subjects.clone(),
            settings: ctx.config.settings.consumer.clone(),
            metrics: ctx.metrics.clone(),
            shutdown: ctx.shutdown.clone(),
            seal_dead_letters: Some(Arc::new(move |payload: &[u8]| {
                sealer.cipher.seal_bytes(payload, DEAD_LETTER_AAD)
            })),
            max_payload: ctx.nats.server_info().max_payload,
        },
        move |batch| handle(handler.clone(), batch),
    ));
    Ok(())
}

/// Runs one instance of intake until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    let mut host = Host::open(ctx.clone(), IDENT, &MIGRATOR).await?;
    let playbooks = host.playbooks("intake").await?;
    let intake = Arc::new(Intake::new(ctx.clone(), host.store(), &playbooks)?);
    let subjects = &ctx.subjects;
    // Intake writes every complaint's text key, so it makes their bucket.
    let bucket = subjects.text_keys_bucket();
    ctx.js
        .get_or_create_stream(redress_platform::sealed::bucket_stream(&bucket))
        .await
        .map_err(|e| anyhow::anyhow!("text-key bucket {bucket}: {e}"))?;

    // Submissions and evidence come from the adapters' streams, not the events stream: each
    // its own consumer. Submissions are batched by registration; evidence is answered one at
    // a time.
    adapter_stream(
        &mut host,
        &intake,
        Stream::Submissions,
        subjects::intake::SUBMISSIONS_CONSUMER,
        handlers::submission::handle_batch,
    )
    .await?;
    adapter_stream(
        &mut host,
        &intake,
        Stream::Evidence,
        subjects::intake::EVIDENCE_CONSUMER,
        handlers::evidence::handle_batch,
    )
    .await?;
    host.consume(Filter::All, intake.clone()).await?;

    let commands = host
        .commands("Registers complaints and answers status queries")
        .await?;
    {
        let intake = intake.clone();
        commands
            .endpoint(
                subjects::intake::SUBMIT,
                subjects::intake::SUBMIT,
                move |m| handlers::submit_command::handle(intake.clone(), m),
            )
            .await?;
    }
    {
        let intake = intake.clone();
        commands
            .endpoint(
                subjects::intake::STATUS,
                subjects::intake::STATUS,
                move |m| handlers::status_query::handle(intake.clone(), m),
            )
            .await?;
    }
    {
        let intake = intake.clone();
        commands
            .endpoint(subjects::intake::TRACK, subjects::intake::TRACK, move |m| {
                handlers::track::handle(intake.clone(), m)
            })
            .await?;
    }
    {
        let intake = intake.clone();
        commands
            .endpoint(
                subjects::intake::WITHDRAW,
                subjects::intake::WITHDRAW,
                move |m| handlers::withdraw::handle(intake.clone(), m),
            )
            .await?;
    }
    {
        let intake = intake.clone();
        commands
            .endpoint(
                subjects::intake::RESPOND,
                subjects::intake::RESPOND,
                move |m| handlers::respond::handle(intake.clone(), m),
            )
            .await?;
    }
    commands
        .endpoint(subjects::intake::ERASE, subjects::intake::ERASE, move |m| {
            handlers::erase::handle(intake.clone(), m)
        })
        .await?;
    host.serve().await
}
