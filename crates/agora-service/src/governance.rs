//! Governance through the hub: accounts, applications and their review, permits, the
//! public registry, citizen opt-outs and catalogue descriptions.
//!
//! [`Governance`] exposes exactly the workflows fronts need, each deciding from the
//! caller's principal (the metadata store's own rules: a caller who may not see an object
//! gets `NotFound`, as if it did not exist). What the store also holds for the query path
//! and ingest — person keys, opted-out keys, release registration — is not reachable from
//! here, and the hub secret never leaves: [`Governance::record_opt_out`] keys the
//! identifier inside.
//!
//! The governance types fronts use are re-exported here, so fronts need no dependency on
//! the store's crate.

use agora_core::DatasetName;
use agora_govern::MetaStore;
pub use agora_govern::scram;
pub use agora_govern::{
    AccessEvent, AccessOutcome, AccessTarget, ApiTokenInfo, Application, ApplicationEvent,
    ApplicationForm, ApplicationState, DatasetDescription, DatasetInfo, DatasetMetadata,
    DatasetScope, DateRange, DisclosureProfile, DisclosureRules, DpPolicy, Error, GovernConfig,
    NewProjectResult, NewUser, OptOutChannel, OptOutReceipt, OutputPolicy, PERMIT_SCHEMA, Permit,
    PermitAmendment, PermitGrant, PermitVersion, Principal, ProjectResult, RecordedOptOut,
    RegistryEntry, ReleaseInfo, ReleaseSelector, RequestedDataset, RequestedTable, Result, Role,
    RowFilter, SessionToken, TRANSITIONS, TableScope, User, now_utc, token_id,
};
pub use agora_privacy::IdentityKind;
use agora_privacy::PersonKeyer;

/// An application as fronts show it (the API's JSON, the CLI's output): the stored
/// application, the moves `caller` may make now, and the next open deadline.
pub fn application_view(app: &Application, caller: &Principal) -> serde_json::Value {
    let mut value = serde_json::json!(app);
    value["allowed_transitions"] = serde_json::json!(app.transitions_for(caller));
    value["next_deadline"] = serde_json::json!(app.next_deadline());
    value
}

/// The governance workflows of one hub. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Governance {
    store: MetaStore,
    keyer: PersonKeyer,
}

impl Governance {
    pub(crate) fn new(store: MetaStore, keyer: PersonKeyer) -> Self {
        Self { store, keyer }
    }

    /// A governance action refused (not permitted, not visible to the caller, not allowed
    /// in the object's state) is a `governance.refused` entry: who tried what on which
    /// object. Done changes are logged by the store in their own transaction.
    async fn refused<T>(
        &self,
        actor: &Principal,
        action: &str,
        target: Option<&str>,
        result: Result<T>,
    ) -> Result<T> {
        if let Err(
            e @ (Error::PermissionDenied(_) | Error::NotFound(_) | Error::InvalidTransition { .. }),
        ) = &result
        {
            let mut entry =
                agora_govern::NewAuditEntry::governance("governance.refused", &actor.name)
                    .outcome("refused")
                    .with("action", action)
                    .with("reason", crate::kind_name(agora_core::HasKind::kind(e)));
            if let Some(target) = target {
                // As given by the caller: bounded, it is not trusted.
                entry = entry.with("target", target.chars().take(128).collect::<String>());
            }
            if let Err(logged) = self.store.append_audit(vec![entry]).await {
                tracing::error!(error = %logged, "the audit log could not record a refused action");
            }
        }
        result
    }

    /// Records a citizen's opt-out of `identifier`, of `kind` ([`IdentityKind::Any`] when
    /// not said), through `channel`, by `actor`. Keyed here exactly as ingest keys
    /// identities, from the same canonical form (any typing of the identifier reaches the
    /// same person); the identifier itself is never stored, and an invalid one is refused
    /// without being echoed.
    pub async fn record_opt_out(
        &self,
        identifier: &str,
        kind: IdentityKind,
        channel: OptOutChannel,
        actor: &str,
    ) -> Result<RecordedOptOut> {
        self.store
            .record_opt_out(&self.keyer, identifier, kind, channel, actor)
            .await
    }

    /// The most recent `limit` access events, newest first.
    pub async fn recent_access_events(&self, limit: i64) -> Result<Vec<AccessEvent>> {
        self.store.recent_access_events(limit).await
    }

    /// Amends a permit (a reviewer who is not an applicant): writes version n+1. Refused
    /// once the project is expired or closed, or if the permit changed concurrently.
    pub async fn amend_permit(
        &self,
        actor: &Principal,
        permit_id: &str,
        amendment: PermitAmendment,
        reason: &str,
    ) -> Result<Permit> {
        let result = self
            .store
            .amend_permit(actor, permit_id, amendment, reason)
            .await;
        self.refused(actor, "amend_permit", Some(permit_id), result)
            .await
    }

    /// One application, if `actor` may see it (else `NotFound`, as for a missing id).
    pub async fn application(&self, actor: &Principal, id: &str) -> Result<Application> {
        self.store.application(actor, id).await
    }

    /// The history of an application (who did what when), if `actor` may see it.
    pub async fn application_history(
        &self,
        actor: &Principal,
        id: &str,
    ) -> Result<Vec<ApplicationEvent>> {
        self.store.application_history(actor, id).await
    }

    /// Approves an application under review and issues its data permit (version 1), in one
    /// transaction: of concurrent approvals exactly one wins; the others get
    /// `Error::InvalidTransition`. Only a reviewer who is not an applicant may approve.
    pub async fn approve_application(
        &self,
        actor: &Principal,
        application_id: &str,
        grant: PermitGrant,
        comment: Option<&str>,
    ) -> Result<Permit> {
        let result = self
            .store
            .approve_application(actor, application_id, grant, comment)
            .await;
        self.refused(actor, "approve_application", Some(application_id), result)
            .await
    }

    /// Attaches a result or publication to a registered project (an applicant of the project
    /// or an operator). The only way to add to the registry.
    pub async fn attach_result(
        &self,
        actor: &Principal,
        project_id: &str,
        new: NewProjectResult,
    ) -> Result<ProjectResult> {
        let result = self.store.attach_result(actor, project_id, new).await;
        self.refused(actor, "attach_result", Some(project_id), result)
            .await
    }

    /// Checks a local login (the user id) and password.
    ///
    /// `Ok(Some(principal))` on success; `Ok(None)` for a wrong password, an unknown or
    /// inactive account, or an account without a password — all indistinguishable;
    /// `Error::RateLimited` while the login name is locked after too many failures (even
    /// with the right password, and whether the account exists or not).
    pub async fn authenticate_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<Principal>> {
        self.store.authenticate_password(login, password).await
    }

    /// The SCRAM-SHA-256 verifier of an active local account's password, if it has one
    /// (`Error::RateLimited` while the login name is locked). For the PostgreSQL protocol.
    pub async fn scram_verifier(&self, login: &str) -> Result<Option<scram::Verifier>> {
        self.store.scram_verifier(login).await
    }

    /// Records how a SCRAM login ended (failures count towards the lockout); the principal
    /// on success.
    pub async fn scram_result(&self, login: &str, ok: bool) -> Result<Option<Principal>> {
        self.store.scram_result(login, ok).await
    }

    /// See the store's method of the same name.
    pub fn config(&self) -> &GovernConfig {
        self.store.config()
    }

    /// Starts an application (researchers only); the caller becomes its owner.
    pub async fn create_application(
        &self,
        actor: &Principal,
        form: ApplicationForm,
    ) -> Result<Application> {
        let result = self.store.create_application(actor, form).await;
        self.refused(actor, "create_application", None, result)
            .await
    }

    /// Opens a session for an active user (after a successful login). The token is returned
    /// once; only its SHA-256 is stored.
    pub async fn create_session(&self, user_id: &str) -> Result<SessionToken> {
        self.store.create_session(user_id).await
    }

    /// Creates a local user (operator only). Its password, if any, is set separately.
    pub async fn create_user(&self, actor: &Principal, new: NewUser) -> Result<User> {
        let result = self.store.create_user(actor, new).await;
        self.refused(actor, "create_user", None, result).await
    }

    /// See the store's method of the same name.
    pub async fn dataset(&self, name: &DatasetName) -> Result<Option<DatasetInfo>> {
        self.store.dataset(name).await
    }

    /// Records `active → expired` for every project whose permit's expiry has passed (actor
    /// `system`); returns their application ids. Access already ended at the expiry: this
    /// only keeps states and the registry truthful. Safe to run concurrently.
    pub async fn expire_permits(&self) -> Result<Vec<String>> {
        self.store.expire_permits().await
    }

    /// Issues an API token for `user_id` (the user itself or an operator) carrying `roles`,
    /// or all the user's current roles when `None`. A token never carries a role its user
    /// does not hold.
    pub async fn issue_token(
        &self,
        actor: &Principal,
        user_id: &str,
        roles: Option<&[Role]>,
    ) -> Result<String> {
        let result = self.store.issue_token(actor, user_id, roles).await;
        self.refused(actor, "issue_token", Some(user_id), result)
            .await
    }

    /// The applications `actor` may see, oldest first, optionally in one state.
    pub async fn list_applications(
        &self,
        actor: &Principal,
        state: Option<ApplicationState>,
    ) -> Result<Vec<Application>> {
        self.store.list_applications(actor, state).await
    }

    /// See the store's method of the same name.
    pub async fn list_datasets(&self) -> Result<Vec<DatasetInfo>> {
        self.store.list_datasets().await
    }

    /// The permits `actor` may see, oldest first: every permit for reviewers and operators;
    /// for anyone else, the permits of projects where they are an applicant or a member.
    pub async fn list_permits(&self, actor: &Principal) -> Result<Vec<Permit>> {
        self.store.list_permits(actor).await
    }

    /// The API tokens of `user_id`, oldest first (the user itself or an operator; anyone
    /// else gets `NotFound`).
    pub async fn list_tokens(&self, actor: &Principal, user_id: &str) -> Result<Vec<ApiTokenInfo>> {
        self.store.list_tokens(actor, user_id).await
    }

    /// Every user, ordered by id (operator only).
    pub async fn list_users(&self, actor: &Principal) -> Result<Vec<User>> {
        self.store.list_users(actor).await
    }

    /// The receipt `receipt_id` (the receipt id is the citizen's capability).
    pub async fn opt_out_receipt(&self, receipt_id: &str) -> Result<OptOutReceipt> {
        self.store.opt_out_receipt(receipt_id).await
    }

    /// How many opt-outs are in force (for dashboards; no key is revealed).
    pub async fn opted_out_count(&self) -> Result<i64> {
        self.store.opted_out_count().await
    }

    /// A permit's current version, if `actor` may see it (else `NotFound`).
    pub async fn permit(&self, actor: &Principal, permit_id: &str) -> Result<Permit> {
        self.store.permit(actor, permit_id).await
    }

    /// Every version of a permit, oldest first, if `actor` may see it.
    pub async fn permit_versions(
        &self,
        actor: &Principal,
        permit_id: &str,
    ) -> Result<Vec<PermitVersion>> {
        self.store.permit_versions(actor, permit_id).await
    }

    /// The public registry, oldest approval first. No login needed.
    pub async fn public_registry(&self) -> Result<Vec<RegistryEntry>> {
        self.store.public_registry().await
    }

    /// Deletes ended sessions and stale login-throttle rows; returns how many rows went.
    /// Housekeeping only: expired state is never honoured anyway.
    pub async fn purge_expired_auth_state(&self) -> Result<u64> {
        self.store.purge_expired_auth_state().await
    }

    /// Records the scientific opinion on an application under review (a reviewer who is not
    /// an applicant). Ends the scientific-opinion step and starts the authorization step.
    pub async fn record_scientific_opinion(
        &self,
        actor: &Principal,
        id: &str,
        favourable: bool,
        summary: &str,
    ) -> Result<Application> {
        let result = self
            .store
            .record_scientific_opinion(actor, id, favourable, summary)
            .await;
        self.refused(actor, "record_scientific_opinion", Some(id), result)
            .await
    }

    /// One project of the public registry; `NotFound` for anything not registered.
    pub async fn registry_entry(&self, project_id: &str) -> Result<RegistryEntry> {
        self.store.registry_entry(project_id).await
    }

    /// Release `number` of `dataset`, or its latest release when `number` is `None`.
    pub async fn release(
        &self,
        dataset: &DatasetName,
        number: Option<i64>,
    ) -> Result<Option<ReleaseInfo>> {
        self.store.release(dataset, number).await
    }

    /// See the store's method of the same name.
    pub async fn releases(&self, dataset: &DatasetName) -> Result<Vec<ReleaseInfo>> {
        self.store.releases(dataset).await
    }

    /// The review queue (reviewers and operators): applications submitted or under review,
    /// except the caller's own, the most urgent open deadline first.
    pub async fn review_queue(&self, actor: &Principal) -> Result<Vec<Application>> {
        self.store.review_queue(actor).await
    }

    /// Revokes a permit at once and closes its project (a reviewer who is not an applicant,
    /// or an operator).
    pub async fn revoke_permit(
        &self,
        actor: &Principal,
        permit_id: &str,
        reason: &str,
    ) -> Result<Permit> {
        let result = self.store.revoke_permit(actor, permit_id, reason).await;
        self.refused(actor, "revoke_permit", Some(permit_id), result)
            .await
    }

    /// Ends a session (logout). `false` if the token named no live session.
    pub async fn revoke_session(&self, token: &str) -> Result<bool> {
        self.store.revoke_session(token).await
    }

    /// Revokes the API token `token_id` of `user_id` (the user itself or an operator);
    /// takes effect for the next request. Idempotent: revoking a revoked token returns it
    /// unchanged. `NotFound` for an unknown token, or a caller who may not see it.
    pub async fn revoke_token_by_id(
        &self,
        actor: &Principal,
        user_id: &str,
        token_id: &str,
    ) -> Result<ApiTokenInfo> {
        let result = self
            .store
            .revoke_token_by_id(actor, user_id, token_id)
            .await;
        self.refused(actor, "revoke_token_by_id", Some(user_id), result)
            .await
    }

    /// Ends every session of a user; returns how many were live.
    pub async fn revoke_user_sessions(&self, user_id: &str) -> Result<u64> {
        self.store.revoke_user_sessions(user_id).await
    }

    /// Creates or replaces a dataset's catalogue metadata (operators only).
    pub async fn set_dataset_metadata(
        &self,
        actor: &Principal,
        dataset: &DatasetName,
        metadata: DatasetMetadata,
    ) -> Result<DatasetDescription> {
        let result = self
            .store
            .set_dataset_metadata(actor, dataset, metadata)
            .await;
        self.refused(
            actor,
            "set_dataset_metadata",
            Some(dataset.as_str()),
            result,
        )
        .await
    }

    /// Sets a user's local password (the user itself or an operator; an API that lets users
    /// change their own password should check the current one with
    /// `MetaStore::authenticate_password` first). Only the argon2id PHC string is stored.
    /// Ends every session of the user but `keep_session` (the session the change was made
    /// with, if any); returns how many were ended.
    pub async fn set_password(
        &self,
        actor: &Principal,
        id: &str,
        password: &str,
        keep_session: Option<&str>,
    ) -> Result<u64> {
        let result = self
            .store
            .set_password(actor, id, password, keep_session)
            .await;
        self.refused(actor, "set_password", Some(id), result).await
    }

    /// Activates or deactivates a user (operator only). Deactivation revokes the user's
    /// sessions and API tokens for good: reactivation restores none of them.
    pub async fn set_user_active(&self, actor: &Principal, id: &str, active: bool) -> Result<User> {
        let result = self.store.set_user_active(actor, id, active).await;
        self.refused(actor, "set_user_active", Some(id), result)
            .await
    }

    /// Replaces a user's roles (operator only). Refused if it would leave the hub without an
    /// active operator.
    pub async fn set_user_roles(
        &self,
        actor: &Principal,
        id: &str,
        roles: &[Role],
    ) -> Result<User> {
        let result = self.store.set_user_roles(actor, id, roles).await;
        self.refused(actor, "set_user_roles", Some(id), result)
            .await
    }

    /// Moves an application to `to`, checking the transition and the caller (see the module
    /// documentation). Approval needs the permit's terms: use
    /// `MetaStore::approve_application`. Activation pins the permit's releases; closing
    /// revokes the permit; both in the same transaction as the move.
    pub async fn transition_application(
        &self,
        actor: &Principal,
        id: &str,
        to: ApplicationState,
        comment: Option<&str>,
    ) -> Result<Application> {
        let result = self
            .store
            .transition_application(actor, id, to, comment)
            .await;
        self.refused(actor, "transition_application", Some(id), result)
            .await
    }

    /// Replaces an application's form (applicants, in `draft` or `changes_requested`).
    pub async fn update_application(
        &self,
        actor: &Principal,
        id: &str,
        form: ApplicationForm,
    ) -> Result<Application> {
        let result = self.store.update_application(actor, id, form).await;
        self.refused(actor, "update_application", Some(id), result)
            .await
    }

    /// Updates a user's display name and email (the user itself or an operator).
    pub async fn update_user(
        &self,
        actor: &Principal,
        id: &str,
        display_name: &str,
        email: Option<&str>,
    ) -> Result<User> {
        let result = self.store.update_user(actor, id, display_name, email).await;
        self.refused(actor, "update_user", Some(id), result).await
    }

    /// Maps an OpenID Connect identity to a local user, creating the user (with no role) on
    /// first login. The provider's email and name refresh the profile on every login. The
    /// caller checks `User::active` before opening a session.
    pub async fn upsert_oidc_user(
        &self,
        issuer: &str,
        subject: &str,
        email: Option<&str>,
        name: Option<&str>,
    ) -> Result<User> {
        self.store
            .upsert_oidc_user(issuer, subject, email, name)
            .await
    }

    /// A user, for an operator or for the user itself; anyone else gets `NotFound`.
    pub async fn user(&self, actor: &Principal, id: &str) -> Result<User> {
        self.store.user(actor, id).await
    }

    /// Withdraws an opt-out. Idempotent: withdrawing again returns the withdrawn receipt
    /// with the first withdrawal time. The record is kept.
    pub async fn withdraw_opt_out(&self, receipt_id: &str, actor: &str) -> Result<OptOutReceipt> {
        self.store.withdraw_opt_out(receipt_id, actor).await
    }

    /// A dataset's catalogue metadata, if described. Public.
    pub async fn dataset_metadata(
        &self,
        dataset: &DatasetName,
    ) -> Result<Option<DatasetDescription>> {
        self.store.dataset_metadata(dataset).await
    }

    /// Every described dataset, by name. Public.
    pub async fn list_dataset_metadata(&self) -> Result<Vec<DatasetDescription>> {
        self.store.list_dataset_metadata().await
    }

    /// The store clock's current time, at the store's precision (microseconds).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.store.now()
    }
}
