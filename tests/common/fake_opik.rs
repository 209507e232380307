//! A fake Opik REST server that enforces Opik's real rules (see
//! `shared/reference/opik-rest-api.md`) and stores rows with Opik's
//! full-row upsert semantics, so tests can see duplicates, lost fields and
//! orphans. It also plays scripted failures and records every request body.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use serde_json::{Value as Json, json};

const TRACE_FIELDS: &[&str] = &[
    "id",
    "project_name",
    "name",
    "start_time",
    "end_time",
    "input",
    "output",
    "metadata",
    "tags",
    "error_info",
    "last_updated_at",
    "thread_id",
    "ttft",
    "source",
    "environment",
];
const SPAN_FIELDS: &[&str] = &[
    "id",
    "project_name",
    "trace_id",
    "parent_span_id",
    "name",
    "type",
    "start_time",
    "end_time",
    "input",
    "output",
    "metadata",
    "model",
    "provider",
    "tags",
    "usage",
    "error_info",
    "last_updated_at",
    "total_estimated_cost",
    "total_estimated_cost_version",
    "ttft",
    "source",
    "environment",
];
/// `FeedbackScoreBatchItem` (reference §13; backend `api/FeedbackScoreBatchItem.java`).
const SCORE_FIELDS: &[&str] = &[
    "id",
    "project_name",
    "project_id",
    "name",
    "category_name",
    "value",
    "reason",
    "source",
    "author",
    "source_queue_id",
];
/// Opik's `MIN/MAX_FEEDBACK_SCORE_VALUE` (±999999999.999999999).
const MAX_SCORE: f64 = 999_999_999.999_999_999;

/// A response to play instead of processing a request.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
}

/// A long failure: every write answers `status`, after `hang` if set (a
/// hang longer than the client's timeout plays a timeout).
#[derive(Clone, Copy, Debug)]
pub struct Outage {
    pub status: u16,
    pub hang: Option<std::time::Duration>,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Captured {
    pub path: String,
    pub at: Instant,
    pub status: u16,
    pub gzip: bool,
    pub body: Option<Json>,
}

#[derive(Default)]
pub struct FakeState {
    pub api_key: Option<String>,
    pub workspace: String,
    pub script: VecDeque<Scripted>,
    /// (path suffix, status): the next request to a path ending so is
    /// answered with that status instead of processed.
    pub path_failures: Vec<(String, u16)>,
    /// Batches containing a span with one of these names are rejected (422).
    pub poison_names: Vec<String>,
    pub requests: Vec<Captured>,
    /// While set, writes fail (see [`Outage`]) and are not recorded.
    pub outage: Option<Outage>,
    /// Keep request bodies in `requests` (long tests turn this off).
    pub drop_bodies: bool,
    /// More workspaces, each with the key it takes (tenants).
    pub more_workspaces: Vec<(String, Option<String>)>,
    /// The workspace each stored row (by id) was written to.
    pub row_workspaces: BTreeMap<String, String>,
    /// Upsert stores: identity key → (last_updated_at, row).
    traces: BTreeMap<(String, String), (String, Json)>,
    spans: BTreeMap<(String, String, String, String), (String, Json)>,
    /// Feedback scores: (entity kind, entity id, score name) → the last one
    /// written (Opik keeps one score per name on an entity).
    scores: BTreeMap<(&'static str, String, String), Json>,
}

#[derive(Clone)]
pub struct FakeOpik {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeOpik {
    pub async fn start(api_key: Option<&str>, workspace: &str) -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            api_key: api_key.map(str::to_string),
            workspace: workspace.to_string(),
            ..Default::default()
        }));
        let app = Router::new()
            .route(
                "/api/v1/private/traces/batch",
                post(|State(s): Shared, h: HeaderMap, b: Bytes| {
                    write(s, h, b, "/v1/private/traces/batch", "traces")
                }),
            )
            .route(
                "/api/v1/private/spans/batch",
                post(|State(s): Shared, h: HeaderMap, b: Bytes| {
                    write(s, h, b, "/v1/private/spans/batch", "spans")
                }),
            )
            .route(
                "/api/v1/private/traces/feedback-scores",
                put(|State(s): Shared, h: HeaderMap, b: Bytes| {
                    write(
                        s,
                        h,
                        b,
                        "/v1/private/traces/feedback-scores",
                        "scores:traces",
                    )
                }),
            )
            .route(
                "/api/v1/private/spans/feedback-scores",
                put(|State(s): Shared, h: HeaderMap, b: Bytes| {
                    write(s, h, b, "/v1/private/spans/feedback-scores", "scores:spans")
                }),
            )
            .route("/api/v1/private/traces/{id}", patch(trace_update))
            .route(
                "/api/is-alive/ping",
                get(|| async { json_response(StatusCode::OK, &json!({"healthy": true})) }),
            )
            .route("/api/v1/private/projects", get(projects))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake opik");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Serves one more workspace, which takes `api_key` (tenants).
    pub fn add_workspace(&self, workspace: &str, api_key: Option<&str>) {
        self.state
            .lock()
            .unwrap()
            .more_workspaces
            .push((workspace.to_string(), api_key.map(str::to_string)));
    }

    /// The workspace the row with this id was written to.
    pub fn workspace_of(&self, id: &str) -> Option<String> {
        self.state.lock().unwrap().row_workspaces.get(id).cloned()
    }

    pub fn script(&self, responses: impl IntoIterator<Item = Scripted>) {
        self.state.lock().unwrap().script.extend(responses);
    }

    /// The next request to a path ending with `suffix` answers `status`.
    pub fn fail_next(&self, suffix: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .path_failures
            .push((suffix.to_string(), status));
    }

    /// Starts (`Some`) or ends (`None`) an outage.
    pub fn outage(&self, outage: Option<Outage>) {
        self.state.lock().unwrap().outage = outage;
    }

    pub fn poison(&self, span_name: &str) {
        self.state
            .lock()
            .unwrap()
            .poison_names
            .push(span_name.to_string());
    }

    /// Stored trace rows (what Opik would show), one per identity.
    pub fn traces(&self) -> Vec<Json> {
        self.state
            .lock()
            .unwrap()
            .traces
            .values()
            .map(|(_, r)| r.clone())
            .collect()
    }

    pub fn spans(&self) -> Vec<Json> {
        self.state
            .lock()
            .unwrap()
            .spans
            .values()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Feedback scores stored on traces (`entity` = "traces") or spans
    /// ("spans"), in id then name order.
    pub fn scores(&self, entity: &str) -> Vec<Json> {
        self.state
            .lock()
            .unwrap()
            .scores
            .iter()
            .filter(|((kind, _, _), _)| *kind == entity)
            .map(|(_, s)| s.clone())
            .collect()
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Ids stored under more than one identity: duplicate rows in Opik's UI.
    pub fn duplicate_ids(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for (_, id) in s.traces.keys() {
            *count.entry(format!("trace {id}")).or_default() += 1;
        }
        for (_, _, _, id) in s.spans.keys() {
            *count.entry(format!("span {id}")).or_default() += 1;
        }
        count
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(id, _)| id)
            .collect()
    }
}

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `GET /v1/private/projects`: the authenticated read `tracebridge check` makes.
async fn projects(State(state): State<Arc<Mutex<FakeState>>>, headers: HeaderMap) -> Response {
    let s = state.lock().unwrap();
    let header = |name: &str| header_value(&headers, name);
    if let Some(expected) = &s.api_key {
        if header("authorization").as_deref() != Some(expected.as_str()) {
            return json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"code": 401, "message": "API key is not valid"}),
            );
        }
    }
    if header("comet-workspace").as_deref() != Some(s.workspace.as_str()) {
        return json_response(
            StatusCode::FORBIDDEN,
            &json!({"code": 403, "message": "Workspace not found"}),
        );
    }
    json_response(
        StatusCode::OK,
        &json!({"page": 1, "size": 0, "total": 0, "content": []}),
    )
}

/// A write endpoint: plays an outage if one is on, else `handle`s the
/// body as `key` (`traces`, `spans`, `scores:<entity>`).
async fn write(
    state: Arc<Mutex<FakeState>>,
    headers: HeaderMap,
    body: Bytes,
    path: &'static str,
    key: &'static str,
) -> Response {
    if let Some(r) = play_outage(&state).await {
        return r;
    }
    handle(&state, path, key, &headers, &body)
}

type Shared = State<Arc<Mutex<FakeState>>>;

/// `PATCH /v1/private/traces/{id}`: only the fields given are rewritten;
/// on an id not stored yet, a partial row (`start_time` 1970) is created.
async fn trace_update(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = play_outage(&state).await {
        return r;
    }
    let mut s = state.lock().unwrap();
    let gzip = header_value(&headers, "content-encoding").as_deref() == Some("gzip");
    let decoded = decode(&body, gzip);
    let status = match (refused(&s, &headers), &decoded) {
        (Some((status, _)), _) => status,
        (None, Err(_)) => 400,
        (None, Ok(update)) => {
            let project = update
                .get("project_name")
                .and_then(Json::as_str)
                .unwrap_or("Default Project")
                .to_string();
            let k = (project, id.clone());
            let (stamp, mut row) = s.traces.get(&k).cloned().unwrap_or_else(|| {
                let partial = json!({"id": id, "start_time": "1970-01-01T00:00:00.000000Z"});
                (String::new(), partial)
            });
            if let (Some(row), Some(update)) = (row.as_object_mut(), update.as_object()) {
                for (f, v) in update {
                    row.insert(f.clone(), v.clone());
                }
            }
            // Later than the row it updates (Opik stamps it now64()).
            s.traces.insert(k, (format!("{stamp}~"), row));
            204
        }
    };
    let keep = !s.drop_bodies;
    s.requests.push(Captured {
        path: format!("/v1/private/traces/{id}"),
        at: Instant::now(),
        status,
        gzip,
        body: decoded.ok().filter(|_| keep),
    });
    StatusCode::from_u16(status).unwrap().into_response()
}

async fn play_outage(state: &Mutex<FakeState>) -> Option<Response> {
    let outage = state.lock().unwrap().outage?;
    if let Some(hang) = outage.hang {
        tokio::time::sleep(hang).await;
    }
    Some((StatusCode::from_u16(outage.status).unwrap(), "outage").into_response())
}

fn error(status: u16, body: Json) -> (u16, Json) {
    (status, body)
}

fn handle(
    state: &Mutex<FakeState>,
    path: &str,
    key: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let mut s = state.lock().unwrap();
    let gzip = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        == Some("gzip");
    let decoded = decode(body, gzip);
    let failure = s.path_failures.iter().position(|(p, _)| path.ends_with(p));
    let scripted = match failure {
        Some(i) => Some(Scripted {
            status: s.path_failures.remove(i).1,
            headers: Vec::new(),
        }),
        None => s.script.pop_front(),
    };
    let (status, reply) = match scripted {
        Some(scripted) => {
            s.requests.push(Captured {
                path: path.into(),
                at: Instant::now(),
                status: scripted.status,
                gzip,
                body: decoded.clone().ok(),
            });
            let mut r = (
                StatusCode::from_u16(scripted.status).unwrap(),
                "scripted failure",
            )
                .into_response();
            for (k, v) in scripted.headers {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            return r;
        }
        None => process(&mut s, key, headers, &decoded),
    };
    let keep = !s.drop_bodies;
    s.requests.push(Captured {
        path: path.into(),
        at: Instant::now(),
        status,
        gzip,
        body: decoded.ok().filter(|_| keep),
    });
    let code = StatusCode::from_u16(status).unwrap();
    if status == 204 {
        return code.into_response();
    }
    json_response(code, &reply)
}

fn json_response(code: StatusCode, body: &Json) -> Response {
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn decode(body: &[u8], gzip: bool) -> Result<Json, String> {
    let raw = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        out
    } else {
        body.to_vec()
    };
    serde_json::from_slice(&raw).map_err(|e| e.to_string())
}

fn process(
    s: &mut FakeState,
    key: &str,
    headers: &HeaderMap,
    body: &Result<Json, String>,
) -> (u16, Json) {
    let workspace = header_value(headers, "comet-workspace").unwrap_or_default();
    if let Some(refusal) = refused(s, headers) {
        return refusal;
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                400,
                json!({"code": 400, "message": format!("Unable to process JSON: {e}")}),
            );
        }
    };
    // Feedback scores come as `{"scores": [...]}` on either entity's path.
    let (key, entity) = match key.split_once(':') {
        Some((k, entity)) => (k, Some(entity)),
        None => (key, None),
    };
    let Some(items) = body.get(key).and_then(Json::as_array) else {
        return error(422, json!({"errors": [format!("{key} must not be null")]}));
    };
    if items.is_empty() || items.len() > 1000 {
        return error(
            422,
            json!({"errors": [format!("{key} size must be between 1 and 1000")]}),
        );
    }
    if let Some(entity) = entity {
        return store_scores(s, entity, items);
    }
    for item in items {
        if let Err((status, msg)) = validate_item(item, key) {
            return error(status, json!({"code": status, "errors": [msg]}));
        }
        if key == "spans" {
            let name = item.get("name").and_then(Json::as_str).unwrap_or("");
            if s.poison_names.iter().any(|p| p == name) {
                return error(422, json!({"errors": [format!("span {name:?} is poison")]}));
            }
        }
    }
    for item in items {
        store(s, key, item);
        if let Some(id) = item.get("id").and_then(Json::as_str) {
            s.row_workspaces.insert(id.to_string(), workspace.clone());
        }
    }
    (204, Json::Null)
}

/// 401 without the API key, 403 without the workspace.
fn refused(s: &FakeState, headers: &HeaderMap) -> Option<(u16, Json)> {
    let header = |name: &str| header_value(headers, name);
    let workspace = header("comet-workspace").unwrap_or_default();
    // A workspace served besides the main one checks its own key; else the
    // key, then the workspace.
    let extra = s.more_workspaces.iter().find(|(ws, _)| *ws == workspace);
    let (expected_key, known) = match extra {
        Some((_, key)) => (key.clone(), true),
        None => (s.api_key.clone(), workspace == s.workspace),
    };
    if let Some(expected) = &expected_key {
        if header("authorization").as_deref() != Some(expected.as_str()) {
            return Some(error(
                401,
                json!({"code": 401, "message": "User not allowed to access workspace"}),
            ));
        }
    }
    (!known).then(|| {
        error(
            403,
            json!({"code": 403, "message": "Missing or wrong Comet-Workspace"}),
        )
    })
}

/// Validates a whole `FeedbackScoreBatch` (one bad item fails it), then
/// stores every score.
fn store_scores(s: &mut FakeState, entity: &str, items: &[Json]) -> (u16, Json) {
    for item in items {
        if let Err((status, msg)) = validate_score(item) {
            return error(status, json!({"code": status, "errors": [msg]}));
        }
    }
    let entity: &'static str = if entity == "traces" {
        "traces"
    } else {
        "spans"
    };
    for item in items {
        let f = |k: &str| item[k].as_str().unwrap_or_default().to_string();
        s.scores.insert((entity, f("id"), f("name")), item.clone());
    }
    (204, Json::Null)
}

/// `FeedbackScoreBatchItem`'s rules: `id` a UUID, `name` not blank,
/// `value` a number within ±999999999.999999999, `source` one of `ui`,
/// `sdk`, `online_scoring`, `project_name` null or not blank. A field of
/// the wrong JSON type fails deserialisation (400), a missing or invalid
/// one bean validation (422).
fn validate_score(item: &Json) -> Result<(), (u16, String)> {
    let o = item
        .as_object()
        .ok_or((400, "score is not an object".to_string()))?;
    if let Some(unknown) = o.keys().find(|k| !SCORE_FIELDS.contains(&k.as_str())) {
        return Err((
            400,
            format!("unknown field {unknown:?} (Opik would silently drop it)"),
        ));
    }
    let text = |k: &str| match o.get(k) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(v)) => Ok(Some(v.as_str())),
        Some(_) => Err((400, format!("{k} is not a string"))),
    };
    match text("id")? {
        None => return Err((422, "id must not be null".into())),
        Some(id) if uuid::Uuid::parse_str(id).is_err() => {
            return Err((400, format!("id {id:?} is not a UUID")));
        }
        Some(_) => {}
    }
    if text("name")?.is_none_or(|n| n.trim().is_empty()) {
        return Err((422, "name must not be blank".into()));
    }
    if text("project_name")?.is_some_and(|p| p.trim().is_empty()) {
        return Err((422, "projectName must not be blank".into()));
    }
    for k in ["category_name", "reason", "author"] {
        text(k)?;
    }
    match o.get("value") {
        None | Some(Json::Null) => return Err((422, "value must not be null".into())),
        Some(v) => match v.as_f64() {
            None => return Err((400, "value is not a number".into())),
            Some(v) if v.abs() > MAX_SCORE => {
                return Err((422, "value must be within ±999999999.999999999".into()));
            }
            Some(_) => {}
        },
    }
    match text("source")? {
        None => Err((422, "source must not be null".into())),
        Some("ui" | "sdk" | "online_scoring") => Ok(()),
        Some(other) => Err((
            400,
            format!("source {other:?} is not one of ui, sdk, online_scoring"),
        )),
    }
}

fn is_v7(v: Option<&Json>) -> bool {
    v.and_then(Json::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .is_some_and(|u| u.get_version_num() == 7)
}

fn validate_item(item: &Json, key: &str) -> Result<(), (u16, String)> {
    let o = item
        .as_object()
        .ok_or((400, "item is not an object".to_string()))?;
    let allowed = if key == "traces" {
        TRACE_FIELDS
    } else {
        SPAN_FIELDS
    };
    if let Some(unknown) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err((
            400,
            format!("unknown field {unknown:?} (Opik would silently drop it)"),
        ));
    }
    let what = if key == "traces" { "Trace" } else { "Span" };
    if !is_v7(o.get("id")) {
        return Err((400, format!("{what} id must be a version 7 UUID")));
    }
    let time_ok = |k: &str| {
        o.get(k)
            .and_then(Json::as_str)
            .is_some_and(|t| humantime::parse_rfc3339(t).is_ok())
    };
    if !time_ok("start_time") {
        return Err((422, "start_time must not be null".into()));
    }
    if o.contains_key("end_time") && !time_ok("end_time") {
        return Err((400, "end_time is not a valid instant".into()));
    }
    if o.contains_key("last_updated_at") && !time_ok("last_updated_at") {
        return Err((400, "last_updated_at is not a valid instant".into()));
    }
    if let Some(p) = o.get("project_name") {
        if p.as_str().is_none_or(|p| p.trim().is_empty()) {
            return Err((422, "project_name must not be blank".into()));
        }
    }
    if let Some(tags) = o.get("tags") {
        if tags.as_array().is_none_or(|t| t.len() > 50) {
            return Err((422, "Tag limit exceeded: maximum 50 tags per item".into()));
        }
    }
    if let Some(e) = o.get("error_info") {
        let non_blank = |k: &str| {
            e.get(k)
                .and_then(Json::as_str)
                .is_some_and(|s| !s.trim().is_empty())
        };
        if !non_blank("exception_type") || !non_blank("traceback") {
            return Err((
                422,
                "error_info.exception_type and traceback must not be blank".into(),
            ));
        }
    }
    for k in ["input", "output", "metadata"] {
        if let Some(v) = o.get(k) {
            if !(v.is_object()
                || v.is_string()
                || v.as_array().is_some_and(|a| a.iter().all(Json::is_object)))
            {
                return Err((
                    400,
                    format!("{k} must be an object, an array of objects or a string"),
                ));
            }
        }
    }
    if key == "spans" {
        let ok_type = o
            .get("type")
            .and_then(Json::as_str)
            .is_some_and(|t| ["general", "tool", "llm", "guardrail"].contains(&t));
        if !ok_type {
            return Err((
                422,
                "type must be one of general, tool, llm, guardrail".into(),
            ));
        }
        if o.get("trace_id")
            .and_then(Json::as_str)
            .is_none_or(|t| uuid::Uuid::parse_str(t).is_err())
        {
            return Err((422, "trace_id must not be null".into()));
        }
        match o.get("parent_span_id") {
            None | Some(Json::Null) => {}
            Some(p) if p.as_str().is_some_and(|p| uuid::Uuid::parse_str(p).is_ok()) => {}
            Some(_) => return Err((400, "parent_span_id is not a UUID".into())),
        }
        if let Some(usage) = o.get("usage") {
            let ints = usage.as_object().is_some_and(|u| {
                u.values()
                    .all(|v| v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()))
            });
            if !ints {
                return Err((400, "usage values must be Int32 integers".into()));
            }
        }
        if let Some(c) = o.get("total_estimated_cost") {
            if c.as_f64().is_none_or(|c| c < 0.0) {
                return Err((422, "total_estimated_cost must be >= 0".into()));
            }
        }
    }
    Ok(())
}

/// ReplacingMergeTree(last_updated_at): the row with the greatest
/// `last_updated_at` for an identity wins, as a whole.
fn store(s: &mut FakeState, key: &str, item: &Json) {
    let f = |k: &str| {
        item.get(k)
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_default()
    };
    let stamp = f("last_updated_at");
    let project = item
        .get("project_name")
        .and_then(Json::as_str)
        .unwrap_or("Default Project")
        .to_string();
    if key == "traces" {
        let k = (project, f("id"));
        let replace = s.traces.get(&k).is_none_or(|(old, _)| stamp > *old);
        if replace {
            s.traces.insert(k, (stamp, item.clone()));
        }
    } else {
        let k = (project, f("trace_id"), f("parent_span_id"), f("id"));
        let replace = s.spans.get(&k).is_none_or(|(old, _)| stamp > *old);
        if replace {
            s.spans.insert(k, (stamp, item.clone()));
        }
    }
}
