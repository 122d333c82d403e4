//! The output step: what may leave the hub, decided on the plan before anything runs.
//!
//! Operators' sessions release what they ask (they hold the whole data directory anyway).
//! A permit's answers pass its output policy:
//! - `aggregates` (the default): disclosure control (`agora_query`'s `disclosure` module)
//!   refuses statements whose answer is not made of aggregates over persons, and withholds,
//!   blanks and rounds the cells of the others as the permit's disclosure profile says
//!   (snds, opensafely, ohdsi, custom);
//! - `pseudonymized-rows` (permits approved for individual-level data): rows leave, computed
//!   over policy tables that already show person keys as the project's pseudonyms, other
//!   keys re-keyed and potential identifiers coarsened or absent (`agora_query`'s
//!   `identifiers` module). Still recorded and limited like every answer.

use agora_govern::DisclosureRules;
use agora_query::{PermitWorkspace, Planned, Workspace};

use crate::Result;

/// The output policy a session applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OutputStep {
    /// Operators: the answer as computed.
    Operator,
    /// A data permit's `aggregates` policy under these rules.
    Aggregates(DisclosureRules),
    /// A data permit's `pseudonymized-rows` policy.
    Rows,
}

impl OutputStep {
    /// Plans a statement of an operator's session.
    pub(crate) async fn plan_release(self, ws: &Workspace, sql: &str) -> Result<Planned> {
        Ok(ws.plan(sql).await?)
    }

    /// Plans a statement of a permit session under the permit's output policy.
    pub(crate) async fn plan_permit(self, ws: &PermitWorkspace, sql: &str) -> Result<Planned> {
        match self {
            OutputStep::Aggregates(rules) => Ok(ws.plan_aggregates(sql, rules).await?),
            OutputStep::Rows => Ok(ws.plan_rows(sql).await?),
            // A permit session always has its permit's policy (set in `QueryService::open`).
            OutputStep::Operator => Err(crate::Error::PermissionDenied(
                "a permit session without its output policy releases nothing".into(),
            )),
        }
    }
}
