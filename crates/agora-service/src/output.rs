//! The output step: what may leave the hub, decided on the plan before anything runs.
//!
//! Operators' sessions release what they ask (they hold the whole data directory anyway).
//! A permit's answers must first pass its output policy — disclosure control for
//! `aggregates`, per-project pseudonyms for `pseudonymized-rows` — which the output-control
//! issue plugs in here; until then a permit session plans and describes its scope but
//! releases no answer.

use agora_query::Planned;

use crate::{Error, Result};

/// The output policy a session applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputStep {
    /// Operators: the answer as computed.
    Operator,
    /// A data permit, whose output policy this hub cannot enforce yet: refuse every answer.
    AwaitingDisclosureControl,
}

impl OutputStep {
    /// Checks (later: rewrites) a planned statement.
    pub(crate) fn check(self, planned: Planned) -> Result<Planned> {
        match self {
            OutputStep::Operator => Ok(planned),
            OutputStep::AwaitingDisclosureControl => Err(Error::PermissionDenied(
                "answers under a data permit must pass its output policy (disclosure \
                 control), which this hub does not apply yet; no answer can leave"
                    .into(),
            )),
        }
    }
}
