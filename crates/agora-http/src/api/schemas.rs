//! The JSON schemas of the OpenAPI document (JSON Schema 2020-12, as OpenAPI 3.1 uses),
//! mirroring the serialized forms of the `agora_govern` types and the API's own requests.

use serde_json::{Map, Value, json};

use super::openapi::schema_ref;

fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn datetime() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn date() -> Value {
    json!({"type": "string", "format": "date"})
}

fn integer() -> Value {
    json!({"type": "integer"})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn enumeration(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// An object schema: `required` fields first, then `optional` ones.
fn object(required: &[(&str, Value)], optional: &[(&str, Value)]) -> Value {
    let mut properties = Map::new();
    for (name, schema) in required.iter().chain(optional) {
        properties.insert((*name).to_owned(), schema.clone());
    }
    let names: Vec<&str> = required.iter().map(|(n, _)| *n).collect();
    json!({"type": "object", "properties": properties, "required": names})
}

/// Every schema the operations refer to.
pub(super) fn all() -> Value {
    let r = schema_ref;
    let roles = array(r("Role"));
    let permit_fields = |required: bool| -> Vec<(&'static str, Value)> {
        let mut f = vec![
            ("members", array(string())),
            ("datasets", array(r("DatasetScope"))),
            ("expires_at", datetime()),
            ("output", r("OutputPolicy")),
        ];
        if !required {
            for field in &mut f {
                field.1 = nullable(field.1.clone());
            }
        }
        f
    };
    let mut m = Map::new();
    m.insert(
        "Error".into(),
        object(
            &[(
                "error",
                object(
                    &[
                        (
                            "kind",
                            enumeration(&[
                                "invalid_input",
                                "not_found",
                                "permission_denied",
                                "conflict",
                                "resource_exhausted",
                                "unavailable",
                                "internal",
                                "unauthenticated",
                                "too_many_requests",
                            ]),
                        ),
                        ("message", string()),
                    ],
                    &[],
                ),
            )],
            &[],
        ),
    );
    m.insert(
        "Health".into(),
        object(&[("status", string()), ("version", string())], &[]),
    );
    m.insert(
        "OpenApiDocument".into(),
        json!({"type": "object", "description": "This document."}),
    );
    m.insert(
        "Dataset".into(),
        object(
            &[
                ("name", string()),
                ("model", string()),
                ("created_at", string()),
                ("latest_release", nullable(integer())),
            ],
            &[],
        ),
    );
    m.insert(
        "DatasetList".into(),
        object(&[("datasets", array(r("Dataset")))], &[]),
    );
    m.insert(
        "ReleaseInfo".into(),
        object(
            &[
                ("dataset", string()),
                ("number", integer()),
                ("release_id", string()),
                ("manifest_path", string()),
                ("created_at", string()),
                ("created_by", string()),
                ("rows", integer()),
                ("quarantined", integer()),
            ],
            &[],
        ),
    );
    m.insert(
        "ReleaseList".into(),
        object(
            &[("dataset", string()), ("releases", array(r("ReleaseInfo")))],
            &[],
        ),
    );
    m.insert(
        "Release".into(),
        object(
            &[
                ("release", r("ReleaseInfo")),
                ("source", json!({"type": "object"})),
                ("pseudonymization", json!({"type": "object"})),
                (
                    "tables",
                    array(object(
                        &[
                            ("name", string()),
                            ("rows", integer()),
                            ("columns", json!({"type": "object"})),
                        ],
                        &[],
                    )),
                ),
                (
                    "quarantine",
                    object(
                        &[
                            ("rows", integer()),
                            ("counts", array(json!({"type": "object"}))),
                        ],
                        &[],
                    ),
                ),
                ("warnings", array(string())),
            ],
            &[],
        ),
    );
    m.insert(
        "DatasetMetadata".into(),
        object(
            &[("title", string())],
            &[
                ("description", string()),
                ("publisher", string()),
                ("contact_point", nullable(string())),
                ("legal_basis", string()),
                ("purpose", string()),
                ("coding_systems", array(string())),
                (
                    "access_rights",
                    enumeration(&["public", "restricted", "non_public"]),
                ),
                ("keywords", array(string())),
            ],
        ),
    );
    m.insert(
        "DatasetDescription".into(),
        json!({"allOf": [r("DatasetMetadata"), object(
            &[("dataset", string()), ("updated_at", datetime()), ("updated_by", string())],
            &[],
        )]}),
    );
    m.insert(
        "CatalogueEntry".into(),
        object(
            &[
                ("dataset", string()),
                ("model", string()),
                ("metadata", nullable(r("DatasetMetadata"))),
                ("releases", integer()),
                ("latest_release", nullable(json!({
                    "type": "object",
                    "description": "Latest release: number, created_at, records, persons (null while its quality profile is pending), temporal {start, end}, quality {status: pending|profiled, checks, failed}, tables with rows, persons and columns (name, type, nullable, null_rate)."
                }))),
            ],
            &[],
        ),
    );
    m.insert(
        "Catalogue".into(),
        object(&[("datasets", array(r("CatalogueEntry")))], &[]),
    );
    m.insert("JsonLd".into(), json!({"type": "object", "description": "A HealthDCAT-AP (DCAT-AP 3 health extension) JSON-LD document: a dcat:Catalog whose dcat:dataset entries carry healthdcatap:numberOfRecords, healthdcatap:numberOfUniqueIndividuals, dct:temporal, healthdcatap:hasCodingSystem, dct:accessRights, dpv:hasLegalBasis and dpv:hasPurpose."}));
    m.insert("QualityProfile".into(), json!({"type": "object", "description": "Counts, null rates, ranges, code distributions, implausible dates and pass/fail checks of every table of a release."}));
    m.insert(
        "SqlRequest".into(),
        object(
            &[("dataset", string()), ("sql", string())],
            &[
                ("release", integer()),
                ("format", enumeration(&["json", "csv", "tsv", "arrow"])),
            ],
        ),
    );
    m.insert("SqlResult".into(), json!({
            "description": "With format csv, tsv or arrow the body is text/csv, text/tab-separated-values or an Arrow IPC stream (application/vnd.apache.arrow.stream) instead.",
            "type": "object",
            "properties": {
                "dataset": string(), "release": integer(),
                "columns": array(object(&[("name", string()), ("type", string())], &[])),
                "rows": array(json!({"type": "object"})), "row_count": integer(),
            },
            "required": ["dataset", "release", "columns", "rows", "row_count"],
        }));
    m.insert(
        "Role".into(),
        enumeration(&["operator", "producer", "reviewer", "researcher", "auditor"]),
    );
    m.insert(
        "LoginRequest".into(),
        object(&[("login", string()), ("password", string())], &[]),
    );
    m.insert(
        "Session".into(),
        object(
            &[
                ("token", string()),
                ("user_id", string()),
                ("roles", roles.clone()),
                ("expires_at", datetime()),
                ("idle_timeout_secs", integer()),
            ],
            &[],
        ),
    );
    m.insert(
        "LoggedOut".into(),
        object(&[("logged_out", boolean())], &[]),
    );
    m.insert(
        "Me".into(),
        object(
            &[
                ("user", r("User")),
                ("roles", roles.clone()),
                ("authenticated_by", enumeration(&["api_token", "session"])),
            ],
            &[],
        ),
    );
    m.insert(
        "User".into(),
        object(
            &[
                ("id", string()),
                ("display_name", string()),
                ("email", nullable(string())),
                ("roles", roles.clone()),
                ("active", boolean()),
                ("has_password", boolean()),
                ("created_at", datetime()),
                ("updated_at", datetime()),
            ],
            &[],
        ),
    );
    m.insert(
        "UserList".into(),
        object(&[("users", array(r("User")))], &[]),
    );
    m.insert(
        "NewUser".into(),
        object(
            &[
                (
                    "id",
                    json!({"type": "string", "pattern": "^[a-z0-9][a-z0-9._@+-]{0,63}$"}),
                ),
                ("display_name", string()),
            ],
            &[
                ("email", nullable(string())),
                ("roles", roles.clone()),
                ("password", json!({"type": "string", "minLength": 12})),
            ],
        ),
    );
    m.insert(
        "UserProfile".into(),
        object(
            &[("display_name", string())],
            &[("email", nullable(string()))],
        ),
    );
    m.insert(
        "RolesRequest".into(),
        object(&[("roles", roles.clone())], &[]),
    );
    m.insert(
        "PasswordRequest".into(),
        object(
            &[("password", json!({"type": "string", "minLength": 12}))],
            &[("current_password", string())],
        ),
    );
    m.insert(
        "PasswordSet".into(),
        object(
            &[
                ("user_id", string()),
                ("password_set", boolean()),
                ("other_sessions_ended", integer()),
            ],
            &[],
        ),
    );
    m.insert(
        "ApiToken".into(),
        object(
            &[
                ("id", string()),
                ("user_id", string()),
                ("roles", roles.clone()),
                ("created_at", datetime()),
                ("revoked_at", nullable(datetime())),
            ],
            &[],
        ),
    );
    m.insert(
        "ApiTokenList".into(),
        object(&[("tokens", array(r("ApiToken")))], &[]),
    );
    m.insert(
        "NewTokenRequest".into(),
        object(&[], &[("roles", nullable(roles.clone()))]),
    );
    m.insert(
        "IssuedToken".into(),
        object(
            &[
                ("token", string()),
                ("id", string()),
                ("user_id", string()),
                ("roles", roles),
                ("note", string()),
            ],
            &[],
        ),
    );
    m.insert(
        "ApplicationState".into(),
        enumeration(&[
            "draft",
            "submitted",
            "under_review",
            "changes_requested",
            "approved",
            "rejected",
            "active",
            "expired",
            "closed",
        ]),
    );
    m.insert(
        "PotentialIdentifier".into(),
        enumeration(&[
            "birth_year_month",
            "commune",
            "exact_care_dates",
            "exact_death_date",
        ]),
    );
    m.insert(
        "RequestedTable".into(),
        object(&[("table", string())], &[("columns", array(string()))]),
    );
    m.insert(
        "RequestedDataset".into(),
        object(
            &[("dataset", string())],
            &[("tables", array(r("RequestedTable")))],
        ),
    );
    m.insert(
        "DateRange".into(),
        object(&[("from", date()), ("to", date())], &[]),
    );
    m.insert(
        "ApplicationForm".into(),
        object(
            &[],
            &[
                ("title", string()),
                ("purpose", string()),
                ("public_interest", string()),
                ("legal_basis", string()),
                ("organisation", string()),
                ("requested", array(r("RequestedDataset"))),
                ("period", nullable(r("DateRange"))),
                ("identifiers", array(r("PotentialIdentifier"))),
                (
                    "duration_months",
                    json!({"type": "integer", "minimum": 0, "maximum": 120}),
                ),
                ("team", array(string())),
            ],
        ),
    );
    m.insert(
        "StepDeadline".into(),
        object(
            &[
                (
                    "step",
                    enumeration(&["completeness_check", "scientific_opinion", "authorization"]),
                ),
                ("started_at", datetime()),
                ("due_at", datetime()),
                ("completed_at", nullable(datetime())),
                ("overdue", boolean()),
            ],
            &[],
        ),
    );
    m.insert(
        "Application".into(),
        object(
            &[
                ("id", string()),
                ("owner", string()),
                ("state", r("ApplicationState")),
                ("form", r("ApplicationForm")),
                ("created_at", datetime()),
                ("updated_at", datetime()),
                ("submitted_at", nullable(datetime())),
                ("permit_id", nullable(string())),
                ("deadlines", array(r("StepDeadline"))),
                ("allowed_transitions", array(r("ApplicationState"))),
                ("next_deadline", nullable(r("StepDeadline"))),
            ],
            &[],
        ),
    );
    m.insert(
        "ApplicationList".into(),
        object(&[("projects", array(r("Application")))], &[]),
    );
    m.insert(
        "ApplicationEvent".into(),
        object(
            &[
                ("seq", integer()),
                (
                    "kind",
                    enumeration(&[
                        "created",
                        "edited",
                        "transition",
                        "favourable_opinion",
                        "unfavourable_opinion",
                    ]),
                ),
                ("from", nullable(r("ApplicationState"))),
                ("to", r("ApplicationState")),
                ("actor", string()),
                ("at", datetime()),
                ("comment", nullable(string())),
            ],
            &[],
        ),
    );
    m.insert(
        "ApplicationHistory".into(),
        object(
            &[
                ("project_id", string()),
                ("events", array(r("ApplicationEvent"))),
            ],
            &[],
        ),
    );
    m.insert(
        "TransitionRequest".into(),
        object(
            &[("to", r("ApplicationState"))],
            &[("comment", nullable(string()))],
        ),
    );
    m.insert(
        "OpinionRequest".into(),
        object(&[("favourable", boolean()), ("summary", string())], &[]),
    );
    m.insert("ReleaseSelector".into(), json!({"oneOf": [
            {"const": "latest_at_activation", "description": "The latest release when the project is activated (then pinned)."},
            object(&[("number", integer())], &[]),
        ]}));
    m.insert("RowFilter".into(), json!({"oneOf": [
            object(&[("kind", json!({"const": "period"})), ("column", string())], &[("from", nullable(date())), ("to", nullable(date()))]),
            object(&[("kind", json!({"const": "age_range"})), ("year_of_birth_column", string()), ("at_year", integer())],
                   &[("min_age", nullable(integer())), ("max_age", nullable(integer()))]),
            object(&[("kind", json!({"const": "value_in"})), ("column", string()), ("values", array(integer()))], &[]),
        ]}));
    m.insert(
        "TableScope".into(),
        object(
            &[("table", string()), ("columns", array(string()))],
            &[
                ("row_filters", array(r("RowFilter"))),
                (
                    "precision",
                    json!({
                        "type": "object",
                        "description": "How precisely some permitted columns are shown; under \
                                        pseudonymized-rows, potential identifiers not listed get \
                                        the defaults (birth dates: year, other dates: month, \
                                        places: absent)",
                        "additionalProperties": enumeration(&["exact", "day", "month", "year"]),
                    }),
                ),
            ],
        ),
    );
    m.insert(
        "DatasetScope".into(),
        object(
            &[
                ("dataset", string()),
                ("release", r("ReleaseSelector")),
                ("tables", array(r("TableScope"))),
            ],
            &[],
        ),
    );
    m.insert(
        "OutputPolicy".into(),
        object(
            &[],
            &[
                ("policy", enumeration(&["aggregates", "pseudonymized-rows"])),
                (
                    "profile",
                    enumeration(&["snds", "opensafely", "ohdsi", "custom"]),
                ),
                ("k", nullable(json!({"type": "integer", "minimum": 2}))),
                (
                    "rounding",
                    nullable(json!({"type": "integer", "minimum": 1})),
                ),
                (
                    "dominance_percent",
                    nullable(json!({"type": "number", "exclusiveMinimum": 0, "maximum": 100})),
                ),
                ("export_review", nullable(json!({"type": "boolean"}))),
                ("dp", nullable(r("DpPolicy"))),
            ],
        ),
    );
    m.insert(
        "DpPolicy".into(),
        object(
            &[(
                "epsilon_budget",
                json!({"type": "number", "exclusiveMinimum": 0}),
            )],
            &[
                (
                    "epsilon_per_query",
                    nullable(json!({"type": "number", "exclusiveMinimum": 0})),
                ),
                (
                    "delta",
                    json!({"type": "number", "minimum": 0, "default": 0}),
                ),
                (
                    "max_rows_per_person",
                    nullable(json!({"type": "integer", "minimum": 1})),
                ),
                (
                    "sum_bound",
                    nullable(json!({"type": "number", "exclusiveMinimum": 0})),
                ),
            ],
        ),
    );
    // Why the expiry is later than the application's requested duration: required for
    // such an expiry, which still never passes the hub maximum.
    let extension = ("expiry_beyond_request_reason", nullable(string()));
    m.insert(
        "PermitTerms".into(),
        object(&permit_fields(true), std::slice::from_ref(&extension)),
    );
    m.insert(
        "Permit".into(),
        object(
            &[
                (
                    "schema",
                    json!({"const": agora_service::governance::PERMIT_SCHEMA}),
                ),
                ("id", string()),
                ("version", integer()),
                ("application_id", string()),
                ("project_title", string()),
                ("organisation", string()),
                (
                    "status",
                    enumeration(&["approved", "active", "expired", "revoked"]),
                ),
                ("members", array(string())),
                ("datasets", array(r("DatasetScope"))),
                ("expires_at", datetime()),
                ("output", r("OutputPolicy")),
                ("issued_at", datetime()),
                ("issued_by", string()),
                ("activated_at", nullable(datetime())),
                ("activated_by", nullable(string())),
                ("revoked_at", nullable(datetime())),
                ("revoked_by", nullable(string())),
                ("revoke_reason", nullable(string())),
                ("version_created_at", datetime()),
                ("version_created_by", string()),
                ("version_reason", string()),
            ],
            std::slice::from_ref(&extension),
        ),
    );
    m.insert(
        "PermitList".into(),
        object(&[("permits", array(r("Permit")))], &[]),
    );
    m.insert(
        "PermitSqlRequest".into(),
        object(
            &[("sql", string())],
            &[("format", enumeration(&["json", "csv", "tsv", "arrow"]))],
        ),
    );
    m.insert("PermitSqlResult".into(), json!({
            "description": "With format csv, tsv or arrow the body is text/csv, text/tab-separated-values or an Arrow IPC stream (application/vnd.apache.arrow.stream) instead.",
            "type": "object",
            "properties": {
                "permit_id": string(),
                "columns": array(object(&[("name", string()), ("type", string())], &[])),
                "rows": array(json!({"type": "object"})), "row_count": integer(),
            },
            "required": ["permit_id", "columns", "rows", "row_count"],
        }));
    m.insert(
        "PermitColumn".into(),
        object(
            &[
                ("name", string()),
                ("type", string()),
                ("nullable", boolean()),
            ],
            &[],
        ),
    );
    m.insert(
        "PermitTable".into(),
        object(
            &[("name", string()), ("columns", array(r("PermitColumn")))],
            &[],
        ),
    );
    m.insert(
        "PermitSchema".into(),
        object(
            &[("permit_id", string()), ("tables", array(r("PermitTable")))],
            &[],
        ),
    );
    m.insert(
        "PermitVersion".into(),
        object(
            &[
                ("version", integer()),
                ("terms", r("PermitTerms")),
                ("created_at", datetime()),
                ("created_by", string()),
                ("reason", string()),
            ],
            &[],
        ),
    );
    m.insert(
        "PermitVersionList".into(),
        object(
            &[
                ("permit_id", string()),
                ("versions", array(r("PermitVersion"))),
            ],
            &[],
        ),
    );
    m.insert(
        "ApproveRequest".into(),
        object(
            &[("datasets", array(r("DatasetScope")))],
            &[
                ("members", nullable(array(string()))),
                ("expires_at", nullable(datetime())),
                ("output", r("OutputPolicy")),
                ("comment", nullable(string())),
                extension.clone(),
            ],
        ),
    );
    m.insert(
        "AmendRequest".into(),
        object(
            &[("reason", string())],
            &[permit_fields(false), vec![extension.clone()]].concat(),
        ),
    );
    m.insert("RevokeRequest".into(), object(&[("reason", string())], &[]));
    m.insert(
        "ExportStatus".into(),
        enumeration(&["pending_review", "approved", "rejected"]),
    );
    m.insert(
        "ExportRequestBody".into(),
        object(&[("sql", string())], &[]),
    );
    m.insert(
        "ExportDecisionRequest".into(),
        object(
            &[
                ("decision", enumeration(&["approve", "reject"])),
                ("reason", string()),
            ],
            &[],
        ),
    );
    m.insert(
        "ExportEvent".into(),
        object(
            &[
                ("at", datetime()),
                ("actor", string()),
                (
                    "kind",
                    enumeration(&["requested", "approved", "rejected", "downloaded"]),
                ),
                ("status", r("ExportStatus")),
                ("reason", nullable(string())),
            ],
            &[],
        ),
    );
    m.insert(
        "ExportRequest".into(),
        object(
            &[
                ("id", string()),
                ("permit_id", string()),
                ("permit_version", integer()),
                ("project_id", string()),
                ("requested_by", string()),
                ("requested_at", datetime()),
                ("statement", string()),
                ("format", enumeration(&["csv"])),
                ("rows", integer()),
                ("bytes", integer()),
                (
                    "sha256",
                    json!({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
                ),
                ("status", r("ExportStatus")),
                ("decided_by", nullable(string())),
                ("decided_at", nullable(datetime())),
                ("reason", nullable(string())),
                ("history", array(r("ExportEvent"))),
            ],
            &[],
        ),
    );
    m.insert(
        "ExportList".into(),
        object(&[("exports", array(r("ExportRequest")))], &[]),
    );
    m.insert(
        "ExportFile".into(),
        json!({
            "description": "The CSV file (UTF-8, header row) as exported, sent as an attachment; its SHA-256 is in the `X-Content-SHA256` header.",
            "type": "string",
        }),
    );
    m.insert(
        "RegistryDataset".into(),
        object(
            &[
                ("dataset", string()),
                ("release", nullable(integer())),
                ("tables", array(string())),
            ],
            &[],
        ),
    );
    m.insert(
        "ProjectResult".into(),
        object(
            &[
                ("id", string()),
                ("title", string()),
                ("url", nullable(string())),
                ("published_on", nullable(date())),
                ("added_at", datetime()),
            ],
            &[],
        ),
    );
    m.insert(
        "NewProjectResult".into(),
        object(
            &[("title", string())],
            &[
                ("url", nullable(string())),
                ("published_on", nullable(date())),
            ],
        ),
    );
    m.insert(
        "RegistryEntry".into(),
        object(
            &[
                ("project_id", string()),
                ("title", string()),
                ("organisation", string()),
                ("purpose", string()),
                ("public_interest", string()),
                ("legal_basis", string()),
                ("datasets", array(r("RegistryDataset"))),
                (
                    "status",
                    enumeration(&["approved", "active", "expired", "closed"]),
                ),
                ("submitted_at", nullable(datetime())),
                ("approved_at", datetime()),
                ("activated_at", nullable(datetime())),
                ("expires_at", datetime()),
                ("ended_at", nullable(datetime())),
                ("permit_id", string()),
                ("permit_version", integer()),
                ("results", array(r("ProjectResult"))),
            ],
            &[],
        ),
    );
    m.insert(
        "RegistryList".into(),
        object(&[("projects", array(r("RegistryEntry")))], &[]),
    );
    m.insert(
        "OptOutRequest".into(),
        object(
            &[("identifier", json!({"type": "string", "maxLength": 256}))],
            &[("kind", enumeration(&["any", "nir", "uuid"]))],
        ),
    );
    m.insert(
        "OptOutOnBehalfRequest".into(),
        object(
            &[("identifier", json!({"type": "string", "maxLength": 256}))],
            &[
                ("kind", enumeration(&["any", "nir", "uuid"])),
                ("channel", enumeration(&["operator", "mail"])),
            ],
        ),
    );
    m.insert(
        "OptOutReceipt".into(),
        object(
            &[
                ("receipt_id", string()),
                ("status", enumeration(&["in_force", "withdrawn"])),
                (
                    "channel",
                    enumeration(&["portal", "mail", "operator", "api"]),
                ),
                ("opted_out_at", datetime()),
                ("withdrawn_at", nullable(datetime())),
            ],
            &[],
        ),
    );
    m.insert(
        "OptOutSubmission".into(),
        object(
            &[
                ("recorded", boolean()),
                ("receipt", nullable(r("OptOutReceipt"))),
                ("message", string()),
            ],
            &[],
        ),
    );
    let hash = json!({"type": "string", "pattern": "^[0-9a-f]{64}$"});
    m.insert(
        "SignedTreeHead".into(),
        object(
            &[
                ("tree_size", integer()),
                ("timestamp", datetime()),
                ("root_hash", hash.clone()),
                ("key_id", hash.clone()),
                ("signature", string()),
            ],
            &[],
        ),
    );
    m.insert(
        "SignedTreeHeadList".into(),
        object(&[("heads", array(r("SignedTreeHead")))], &[]),
    );
    m.insert(
        "AuditKey".into(),
        object(
            &[
                ("algorithm", enumeration(&["Ed25519"])),
                ("public_key", string()),
                ("key_id", hash.clone()),
            ],
            &[],
        ),
    );
    m.insert(
        "InclusionProof".into(),
        object(
            &[
                ("index", integer()),
                ("tree_size", integer()),
                ("leaf_hash", hash.clone()),
                ("path", array(hash.clone())),
            ],
            &[],
        ),
    );
    m.insert(
        "ConsistencyProof".into(),
        object(
            &[
                ("first", integer()),
                ("second", integer()),
                ("path", array(hash)),
            ],
            &[],
        ),
    );
    m.insert(
        "ProjectActivityList".into(),
        object(
            &[(
                "activity",
                array(object(
                    &[
                        ("month", string()),
                        ("project", string()),
                        ("dataset", string()),
                        ("queries", integer()),
                    ],
                    &[],
                )),
            )],
            &[],
        ),
    );
    m.insert(
        "AuditCategory".into(),
        enumeration(&["access", "governance", "operations"]),
    );
    m.insert("AuditFormat".into(), enumeration(&["json", "csv"]));
    m.insert(
        "AuditPosition".into(),
        json!({"type": "integer", "minimum": 0}),
    );
    m.insert("AuditText".into(), string());
    m.insert("AuditTime".into(), datetime());
    m.insert(
        "AuditEntry".into(),
        object(
            &[
                ("seq", integer()),
                ("at", datetime()),
                ("category", r("AuditCategory")),
                ("event", string()),
                ("actor", string()),
                ("outcome", string()),
            ],
            &[
                ("project", string()),
                ("permit", string()),
                ("permit_version", integer()),
                ("detail", json!({"type": "object"})),
            ],
        ),
    );
    m.insert(
        "AuditEntryList".into(),
        object(
            &[
                ("entries", array(r("AuditEntry"))),
                ("next_before", nullable(integer())),
            ],
            &[],
        ),
    );
    Value::Object(m)
}
