//! Who is acting in a command: the person whose key signed it (see `redress_client::people`),
//! never a name in the body. A body that names someone else is refused, so a proposer cannot
//! approve their own proposal by typing another approver's name.

use redress_client::people::{Registry, verify};
use redress_proto::subjects::headers;

use crate::commands::Refusal;

/// The person who signed `message`, checked against the key registered for them.
#[tracing::instrument(skip_all, fields(person = tracing::field::Empty))]
pub async fn signer(registry: &Registry, message: &async_nats::Message) -> Result<String, Refusal> {
    let header = |name| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    let (Some(person), Some(signature)) =
        (header(headers::PERSON), header(headers::PERSON_SIGNATURE))
    else {
        return Err(Refusal::forbidden(
            "signature",
            "unsigned: the person acting must sign the command with their key",
        ));
    };
    tracing::Span::current().record("person", person.as_str());
    let public_key = registry
        .public_key(&person)
        .await
        .map_err(|e| Refusal::internal(format!("the people registry cannot be read: {e}")))?
        .ok_or_else(|| {
            Refusal::forbidden(
                "signature",
                format!("no key is registered for {person:?} (never issued, or revoked)"),
            )
        })?;
    verify(&public_key, &message.subject, &message.payload, &signature).map_err(|_| {
        Refusal::forbidden(
            "signature",
            format!("the signature is not {person}'s over this command"),
        )
    })?;
    Ok(person)
}

/// Puts the verified `person` into the body's `field` (`actor`, `approver`): a blank one
/// takes the signer; another name is refused.
pub fn bind(field: &str, named: &mut String, person: &str) -> Result<(), Refusal> {
    let given = named.trim();
    if !given.is_empty() && given != person {
        return Err(Refusal::forbidden(
            field,
            format!("signed by {person}, but names {given}"),
        ));
    }
    *named = person.to_string();
    Ok(())
}
