//! How every management write goes, in Java's order of checks (ours first): the body is read;
//! the caller must be allowed to write (the `--management-token`, or a loopback client when there
//! is none); the node must be up (Java's `checkCurrentNode`); there must be a request; then
//! Java's checks of the endpoint. The store commits the change and every shard applies it before
//! the reply, so the next discovery call on any connection shows it (Java sleeps two seconds and
//! hopes).

use artemis_shards::management::OperationContext;
use artemis_shards::ErrorCode;

use super::requests::{self, Props};
use super::{Asked, Refusal};
use crate::api::bearer::{bearer_token, same_secret};
use crate::api::envelope::malformed;
use crate::api::{Context, Input, Part, Response};
use crate::decode::DecodeError;
use crate::management::store::Write;
use crate::management::{Change, StoreError};

/// Reads a write from its request (the node at hand, for canary's region).
pub(super) type ReadWrite = fn(&Context<'_>, Props<'_, '_>) -> Result<Asked<Write>, DecodeError>;

/// What Java checks of a write beside the node and the request, and how it words a failure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// Only the endpoint's own checks; a store failure is the endpoint's message.
    Plain,
    /// `BusinessDao`: the operator's `operation`, `extensions`, `operatorId` and `token` must
    /// not be blank, else the endpoint's message.
    Operator,
    /// `ZoneServiceImpl`: a store failure is the endpoint's message followed by the cause.
    WithCause,
}

/// A write endpoint: Java's checks, Java's message when it fails, and how its request is read.
pub(super) struct Writes {
    rules: Rules,
    failed: &'static str,
    read: ReadWrite,
}

impl Writes {
    /// A write that `BusinessDao` checks.
    pub(super) const fn checked(failed: &'static str, read: ReadWrite) -> Writes {
        Writes {
            rules: Rules::Operator,
            failed,
            read,
        }
    }

    /// A write with only its own checks.
    pub(super) const fn plain(failed: &'static str, read: ReadWrite) -> Writes {
        Writes {
            rules: Rules::Plain,
            failed,
            read,
        }
    }

    /// A zone write: the store's reason follows the message.
    pub(super) const fn with_cause(failed: &'static str, read: ReadWrite) -> Writes {
        Writes {
            rules: Rules::WithCause,
            failed,
            read,
        }
    }
}

/// `{"responseStatus":SUCCESS}`, the reply to every write that went through.
const WRITTEN: &[u8] =
    br#"{"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;

/// A management write: see the module's comment for the order of the checks.
pub(super) async fn write(ctx: &Context<'_>, input: Input<'_>, spec: &Writes) -> Response {
    let asked = requests::parse(input.body, |p| {
        Ok((operation_context(&p)?, (spec.read)(ctx, p)?))
    });
    let asked = match asked {
        Err(e) => return malformed(e),
        Ok(asked) => asked,
    };
    let secret = ctx.node.config.management_token.as_deref();
    let body_token = asked.as_ref().and_then(|(c, _)| c.token.as_deref());
    if let Err(refusal) = authorize(
        secret,
        input.authorization,
        input.is_from_loopback(),
        body_token,
    ) {
        return refusal.reply(&[]);
    }
    if !ctx.is_up() {
        return not_up(ctx).reply(&[]);
    }
    let Some((mut context, write)) = asked else {
        return Refusal::bad_request("request is null").reply(&[]);
    };
    if spec.rules == Rules::Operator && !names_operator(&context) {
        return Refusal::internal(spec.failed).reply(&[]);
    }
    let write = match write {
        Ok(write) => write,
        Err(refusal) => return refusal.reply(&[]),
    };
    redact(secret, &mut context);
    let failure = match ctx.management.write(Change { write, context }).await {
        Ok(()) => return Response::json(vec![Part::Static(WRITTEN)]),
        Err(StoreError::Failed(_)) if spec.rules != Rules::WithCause => spec.failed.to_string(),
        Err(e @ StoreError::Failed(_)) => format!("{}{e}", spec.failed),
        // What the store says: the database is down, or the change breaks a rule of the data.
        Err(e) => e.to_string(),
    };
    Refusal::internal(failure).reply(&[])
}

/// Java's `OperationContext`, which every write request extends: `extensions` is `"{}"`
/// unless the request names it.
fn operation_context(p: &Props) -> Result<OperationContext, DecodeError> {
    Ok(OperationContext {
        operation: p.text("operation")?,
        operator_id: p.text("operatorId")?,
        token: p.text("token")?,
        reason: p.text("reason")?,
        extensions: p.text_or("extensions", "{}")?,
    })
}

/// `BusinessDao`'s check: the context says who did what.
fn names_operator(context: &OperationContext) -> bool {
    let fields = [
        &context.operation,
        &context.extensions,
        &context.operator_id,
        &context.token,
    ];
    fields
        .iter()
        .all(|field| field.as_deref().is_some_and(|s| !s.trim().is_empty()))
}

/// The operation logs keep the request's `token` and anyone may read them: the management
/// token (`secret`), when that is what the request carried, is not kept.
fn redact(secret: Option<&str>, context: &mut OperationContext) {
    if let (Some(secret), Some(token)) = (secret, context.token.as_mut()) {
        if same_secret(token.as_bytes(), secret.as_bytes()) {
            *token = "(management token)".to_string();
        }
    }
}

/// Whether the caller may write: with `--management-token` (`secret`), the request carries it
/// (as `Authorization: Bearer <token>` or in its `token` field); without, it comes from
/// loopback.
fn authorize(
    secret: Option<&str>,
    authorization: Option<&[u8]>,
    from_loopback: bool,
    body_token: Option<&str>,
) -> Result<(), Refusal> {
    let no_permission = |why: &str| Err(Refusal::new(ErrorCode::NoPermission, why));
    let Some(secret) = secret else {
        return match from_loopback {
            true => Ok(()),
            false => no_permission(
                "management writes are accepted only from loopback when no --management-token is set",
            ),
        };
    };
    let offered = [
        authorization.and_then(bearer_token),
        body_token.map(str::as_bytes),
    ];
    let mut offered = offered.into_iter().flatten();
    match offered.any(|token| same_secret(token, secret.as_bytes())) {
        true => Ok(()),
        false => no_permission("management token missing or wrong"),
    }
}

/// Java's refusal of a write while the node is not up (its typo kept).
fn not_up(ctx: &Context<'_>) -> Refusal {
    // The node's discovery refusal describes its status as Java's `ServiceNodeStatus` does;
    // Java's management check words the same status without "discovery".
    let status = &ctx.status().discovery_refusal;
    Refusal::new(
        ErrorCode::ServiceUnavailable,
        status.replacen("Serivce discovery is", "Serivce is", 1),
    )
}

/// A write of the list of objects `list`, each read by `row` (`{"groups":[Group]}`).
pub(super) fn rows<T>(
    p: &Props,
    list: &str,
    row: fn(&Props) -> Result<T, DecodeError>,
    write: fn(Vec<T>) -> Write,
) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(write(p.each(list, row)?)))
}

/// A write of the list of ids `list` (`{"groupIds":[long]}`).
pub(super) fn ids(
    p: &Props,
    list: &str,
    write: fn(Vec<i64>) -> Write,
) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(write(p.longs(list)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who may write: the reason of a refusal, `None` for an admitted write.
    fn refused(
        secret: Option<&str>,
        header: Option<&str>,
        loopback: bool,
        body: Option<&str>,
    ) -> Option<String> {
        let header = header.map(str::as_bytes);
        authorize(secret, header, loopback, body)
            .err()
            .map(|r| r.message)
    }

    #[test]
    fn writes_need_the_token_or_else_loopback() {
        assert_eq!(refused(None, None, true, None), None);
        let remote = refused(None, None, false, Some("anything")).unwrap();
        assert_eq!(
            remote,
            "management writes are accepted only from loopback when no --management-token is set"
        );
        let secret = Some("s3cret");
        assert_eq!(refused(secret, Some("Bearer s3cret"), false, None), None);
        assert_eq!(refused(secret, None, false, Some("s3cret")), None);
        assert_eq!(
            refused(secret, Some("Bearer no"), false, Some("s3cret")),
            None
        );
        let wrong = "management token missing or wrong";
        assert_eq!(refused(secret, None, true, None).unwrap(), wrong);
        assert_eq!(
            refused(secret, Some("Bearer no"), true, Some("t")).unwrap(),
            wrong
        );
        assert_eq!(refused(secret, Some("s3cret"), true, None).unwrap(), wrong);
    }

    #[test]
    fn the_management_token_is_not_logged() {
        let mut context = OperationContext {
            token: Some("s3cret".into()),
            ..OperationContext::default()
        };
        redact(None, &mut context);
        assert_eq!(context.token.as_deref(), Some("s3cret"));
        redact(Some("s3cret"), &mut context);
        assert_eq!(context.token.as_deref(), Some("(management token)"));
    }

    #[test]
    fn the_operator_must_be_named_in_full() {
        let full = OperationContext {
            operation: Some("op".into()),
            operator_id: Some("me".into()),
            token: Some("t".into()),
            reason: None,
            extensions: Some("{}".into()),
        };
        assert!(names_operator(&full));
        for blank in [None, Some(" ".to_string())] {
            let mut missing = full.clone();
            missing.token = blank;
            assert!(!names_operator(&missing));
        }
    }
}
