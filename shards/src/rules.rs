//! The per-instance checks every registry operation applies before touching state.
//!
//! Java's `RegistryTool` rejects an instance from another region (or zone, unless cross-zone
//! registration is allowed), and the register executor rejects an instance missing one of the
//! fields it is keyed and reached by. A rejection becomes one entry of the reply's
//! `failedInstances`; the rest of the batch goes on, as in Java's `RegistryServiceImpl`
//! (docs/api.md, "Registry").

use crate::error_code::ErrorCode;
use crate::instance::Instance;

/// The node's identity and the checks every registry op applies to each instance.
#[derive(Clone, Debug)]
pub struct NodeRules {
    pub region_id: String,
    pub zone_id: String,
    pub allow_registry_from_other_zone: bool,
}

/// Why one instance of a batch was refused: its error code and the reason after `name: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub reason: String,
}

impl NodeRules {
    /// Region, then zone: the checks shared by register, heartbeat and unregister.
    pub fn admit(&self, instance: &Instance) -> Result<(), Rejection> {
        self.admit_origin(instance.region_id.as_deref(), instance.zone_id.as_deref())
    }

    /// The region alone: what Java's replication endpoints check of a peer's instance.
    pub fn admit_replicated(&self, instance: &Instance) -> Result<(), Rejection> {
        self.admit_region(instance.region_id.as_deref())
    }

    /// The region and zone checks on their own; discovery requests make them too.
    /// A missing region never matches.
    pub fn admit_origin(&self, region: Option<&str>, zone: Option<&str>) -> Result<(), Rejection> {
        self.admit_region(region)?;
        if !self.allow_registry_from_other_zone && !same_id(zone, &self.zone_id) {
            return Err(Rejection {
                code: ErrorCode::NoPermission,
                reason: format!(
                    "zoneId is not the same as the registry node. zoneId: {}, registry node.zoneId: {}",
                    sent(zone),
                    self.zone_id
                ),
            });
        }
        Ok(())
    }

    /// The region check on its own (a missing region never matches).
    pub fn admit_region(&self, region: Option<&str>) -> Result<(), Rejection> {
        if same_id(region, &self.region_id) {
            return Ok(());
        }
        Err(Rejection {
            code: ErrorCode::NoPermission,
            reason: format!(
                "regionId is not the same as the registry node. regionId: {}, registry node.regionId: {}",
                sent(region),
                self.region_id
            ),
        })
    }
}

/// An id as a reason quotes it: `null` when missing.
fn sent(value: Option<&str>) -> &str {
    value.unwrap_or("null")
}

/// The register executor's argument checks: serviceId, instanceId, then url must be non-blank.
pub(crate) fn check_arguments(instance: &Instance) -> Result<(), Rejection> {
    let required = [
        ("serviceId", &instance.service_id),
        ("instanceId", &instance.instance_id),
        ("url", &instance.url),
    ];
    match required
        .iter()
        .find(|(_, value)| value.as_deref().is_none_or(|v| v.trim().is_empty()))
    {
        Some((field, _)) => Err(Rejection {
            code: ErrorCode::InternalServiceError,
            reason: format!("Exception: argument instance.{field} is null or whitespace"),
        }),
        None => Ok(()),
    }
}

/// Ids compare case-insensitively; a missing id never matches.
/// Java's `equalsIgnoreCase`; the ASCII comparison answers the common case without allocating.
fn same_id(sent: Option<&str>, node: &str) -> bool {
    sent.is_some_and(|id| id.eq_ignore_ascii_case(node) || id.to_lowercase() == node.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::tests::i1;

    fn rules(allow_other_zone: bool) -> NodeRules {
        NodeRules {
            region_id: "SHA".into(),
            zone_id: "SHAJQ".into(),
            allow_registry_from_other_zone: allow_other_zone,
        }
    }

    fn reason(result: Result<(), Rejection>) -> (ErrorCode, String) {
        let rejection = result.unwrap_err();
        (rejection.code, rejection.reason)
    }

    #[test]
    fn region_must_match_ignoring_case() {
        let mut lower = i1();
        lower.region_id = Some("sha".into());
        assert_eq!(rules(false).admit(&lower), Ok(()));

        let mut other = i1();
        other.region_id = Some("FRA".into());
        assert_eq!(
            reason(rules(true).admit(&other)),
            (
                ErrorCode::NoPermission,
                "regionId is not the same as the registry node. regionId: FRA, registry node.regionId: SHA".into()
            )
        );
    }

    #[test]
    fn missing_region_fails_as_null() {
        let mut none = i1();
        none.region_id = None;
        assert_eq!(
            reason(rules(true).admit(&none)).1,
            "regionId is not the same as the registry node. regionId: null, registry node.regionId: SHA"
        );
    }

    #[test]
    fn zone_checked_unless_other_zones_allowed() {
        let mut other = i1();
        other.zone_id = Some("SHAOY".into());
        assert_eq!(rules(true).admit(&other), Ok(()));
        assert_eq!(
            reason(rules(false).admit(&other)),
            (
                ErrorCode::NoPermission,
                "zoneId is not the same as the registry node. zoneId: SHAOY, registry node.zoneId: SHAJQ".into()
            )
        );
        other.zone_id = None;
        assert_eq!(
            reason(rules(false).admit(&other)).1,
            "zoneId is not the same as the registry node. zoneId: null, registry node.zoneId: SHAJQ"
        );
        other.zone_id = Some("shajq".into());
        assert_eq!(rules(false).admit(&other), Ok(()));
    }

    #[test]
    fn region_is_checked_before_zone() {
        let mut both = i1();
        both.region_id = Some("FRA".into());
        both.zone_id = Some("X".into());
        assert!(reason(rules(false).admit(&both)).1.starts_with("regionId"));
    }

    #[test]
    fn arguments_checked_in_order() {
        assert_eq!(check_arguments(&i1()), Ok(()));
        let message = |f: &str| format!("Exception: argument instance.{f} is null or whitespace");

        let mut no_url = i1();
        no_url.url = None;
        assert_eq!(
            reason(check_arguments(&no_url)),
            (ErrorCode::InternalServiceError, message("url"))
        );

        let mut blank_instance = no_url.clone();
        blank_instance.instance_id = Some(" \t".into());
        assert_eq!(
            reason(check_arguments(&blank_instance)).1,
            message("instanceId")
        );

        let mut no_service = blank_instance.clone();
        no_service.service_id = Some(String::new());
        assert_eq!(reason(check_arguments(&no_service)).1, message("serviceId"));
    }
}
