//! A small in-memory Kubernetes API for tests that run the operator as a
//! whole (`run_with_client`): it keeps objects by URL path, answers GET,
//! POST and PATCH (merge semantics, `null` deletes; or a JSON patch), lists every collection
//! as empty unless objects were stored under it, and holds watches open
//! until the client drops them (replaying, from the resourceVersion a watch
//! names, the changes since its list). Every request is recorded.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The name of the client that sent it ([`FakeApi::client_named`]).
    pub client: String,
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string.
    pub query: String,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

type WatchSender = futures::channel::mpsc::UnboundedSender<Value>;

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    seen: Vec<Seen>,
    resource_version: u64,
    /// Open watches (only over [`FakeApi::listen`]), by collection path.
    watches: Vec<(String, WatchSender)>,
    /// Every change so far (collection, event, resourceVersion), so a
    /// watch from a list's resourceVersion replays what changed between
    /// the list and the watch, as the apiserver does.
    history: Vec<(String, Value, u64)>,
}

/// True when a watch on `watch` (a collection path, maybe cluster-wide)
/// sees objects of collection `collection` (always namespaced here).
fn watch_sees(watch: &str, collection: &str) -> bool {
    if watch == collection {
        return true;
    }
    // /apis/g/v/namespaces/ns/luns is seen by /apis/g/v/luns.
    let Some((prefix, rest)) = collection.split_once("/namespaces/") else {
        return false;
    };
    let Some((_, plural)) = rest.split_once('/') else {
        return false;
    };
    watch == format!("{prefix}/{plural}")
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or(path)
}

impl State {
    fn notify(&mut self, path: &str, type_: &str, object: &Value) {
        let collection = parent(path).to_string();
        let event = json!({"type": type_, "object": object});
        self.history
            .push((collection.clone(), event.clone(), self.resource_version));
        self.watches.retain(|(watch, tx)| {
            !watch_sees(watch, &collection) || tx.unbounded_send(event.clone()).is_ok()
        });
    }

    fn bump(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }
}

/// The fake API; clone it to share between clients.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn reply(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).expect("json")))
        .expect("response")
}

fn not_found(path: &str) -> Response<Body> {
    reply(
        StatusCode::NOT_FOUND,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("{path} not found"), "reason": "NotFound", "code": 404}),
    )
}

impl FakeApi {
    /// A kube client talking to this fake.
    pub fn client(&self) -> Client {
        self.client_named("")
    }

    /// A kube client whose requests are recorded under `name`.
    pub fn client_named(&self, name: &str) -> Client {
        let api = self.clone();
        let name = name.to_string();
        let service = tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            let name = name.clone();
            async move { Ok::<_, Infallible>(api.serve(req, name).await) }
        });
        Client::new(service, "default")
    }

    /// Stores `object` under `path` (e.g.
    /// `/apis/coordination.k8s.io/v1/namespaces/ns/leases/l`).
    pub fn put(&self, path: &str, object: Value) {
        self.state
            .lock()
            .expect("state")
            .objects
            .insert(path.to_string(), object);
    }

    /// The object stored under `path`.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().expect("state").objects.get(path).cloned()
    }

    /// Deletes the object under `path` as the apiserver does: with
    /// finalizers it only gets a deletionTimestamp, else it is gone. Watches
    /// over [`FakeApi::listen`] see the change.
    pub fn delete(&self, path: &str) {
        let mut state = self.state.lock().expect("state");
        let Some(mut obj) = state.objects.get(path).cloned() else {
            return;
        };
        obj["metadata"]["resourceVersion"] = json!(state.bump());
        if obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
        {
            obj["metadata"]["deletionTimestamp"] = json!("2026-11-30T10:00:00Z");
            state.objects.insert(path.to_string(), obj.clone());
            state.notify(path, "MODIFIED", &obj);
        } else {
            state.objects.remove(path);
            state.notify(path, "DELETED", &obj);
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("state").seen.clone()
    }

    /// Serves the fake over loopback HTTP (for a kubeconfig `server:`);
    /// requests are recorded under `name`.
    pub async fn listen(&self, name: &str) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let api = self.clone();
        let name = name.to_string();
        let router = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let api = api.clone();
            let name = name.clone();
            async move {
                let watching = req
                    .uri()
                    .query()
                    .is_some_and(|q| q.split('&').any(|q| q == "watch=true" || q == "watch=1"));
                if watching {
                    return api.watch(req.uri(), name);
                }
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, 16 << 20)
                    .await
                    .unwrap_or_default();
                let req = Request::from_parts(parts, Body::from(bytes.to_vec()));
                let resp = api.serve(req, name).await;
                let (parts, body) = resp.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                Response::from_parts(parts, axum::body::Body::from(bytes))
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        addr
    }

    /// A watch over loopback HTTP: a stream of the changes made from now
    /// on, one JSON event per line.
    fn watch(&self, uri: &http::Uri, client: String) -> Response<axum::body::Body> {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Value>();
        let mut state = self.state.lock().expect("state");
        state.seen.push(Seen {
            client,
            method: "GET".into(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            body: Value::Null,
        });
        // Replay what changed since the list the watch starts from.
        let since: u64 = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|q| q.strip_prefix("resourceVersion="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX);
        for (collection, event, rv) in &state.history {
            if *rv > since && watch_sees(uri.path(), collection) {
                let _ = tx.unbounded_send(event.clone());
            }
        }
        state.watches.push((uri.path().to_string(), tx));
        use futures::StreamExt;
        let lines = rx.map(|event| {
            let mut line = serde_json::to_vec(&event).expect("json");
            line.push(b'\n');
            Ok::<_, Infallible>(bytes::Bytes::from(line))
        });
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(axum::body::Body::from_stream(lines))
            .expect("response")
    }

    async fn serve(&self, req: Request<Body>, client: String) -> Response<Body> {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.state.lock().expect("state").seen.push(Seen {
            client,
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            body: body.clone(),
        });
        if query
            .split('&')
            .any(|q| q == "watch=true" || q == "watch=1")
        {
            // A watch with nothing to say: open until the client drops it.
            return futures::future::pending().await;
        }
        if path == "/version" {
            return reply(
                StatusCode::OK,
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0",
                        "gitCommit": "fake", "gitTreeState": "clean",
                        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
                        "compiler": "gc", "platform": "linux/amd64"}),
            );
        }
        let mut state = self.state.lock().expect("state");
        let rv = state.resource_version.to_string();
        match method.as_str() {
            "GET" => {
                if let Some(obj) = state.objects.get(&path) {
                    return reply(StatusCode::OK, obj);
                }
                let prefix = format!("{path}/");
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(p, _)| {
                        p.strip_prefix(&prefix)
                            .is_some_and(|rest| !rest.contains('/'))
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                // A collection is a path whose last segment is plural and
                // not an object name: the fake treats any unknown path
                // ending in a kind's plural as a list.
                let last = path.rsplit('/').next().unwrap_or_default();
                if !items.is_empty() || last.ends_with('s') && is_collection(&path) {
                    return reply(
                        StatusCode::OK,
                        &json!({"kind": "List", "apiVersion": "v1",
                                "metadata": {"resourceVersion": rv}, "items": items}),
                    );
                }
                not_found(&path)
            }
            "POST" => {
                let name = body["metadata"]["name"].as_str().unwrap_or_default();
                let full = format!("{path}/{name}");
                if state.objects.contains_key(&full) {
                    return reply(
                        StatusCode::CONFLICT,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "reason": "AlreadyExists", "code": 409,
                                "message": format!("{full} already exists")}),
                    );
                }
                let mut obj = body.clone();
                obj["metadata"]["resourceVersion"] = json!(state.bump());
                state.objects.insert(full.clone(), obj.clone());
                state.notify(&full, "ADDED", &obj);
                reply(StatusCode::CREATED, &obj)
            }
            "PATCH" => {
                // A status patch changes the object's status only.
                let (target, patch) = match path.strip_suffix("/status") {
                    Some(object) => (object.to_string(), json!({"status": body["status"]})),
                    None => (path.clone(), body.clone()),
                };
                let Some(current) = state.objects.get(&target).cloned() else {
                    return not_found(&path);
                };
                if let Some(expected) = patch["metadata"]["resourceVersion"].as_str()
                    && Some(expected) != current["metadata"]["resourceVersion"].as_str()
                {
                    return reply(
                        StatusCode::CONFLICT,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "reason": "Conflict", "code": 409,
                                "message": format!("{target}: the object has been modified")}),
                    );
                }
                let mut updated = current.clone();
                if body.is_array() {
                    // A JSON patch (kube-runtime's finalizer helper sends
                    // one, with a `test` op as its precondition).
                    // Like the apiserver, `test` of a missing path against
                    // null passes (kube's "no finalizers yet" precondition).
                    let ops: Vec<Value> = body
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|op| {
                            !(op["op"] == "test"
                                && op["value"].is_null()
                                && op["path"]
                                    .as_str()
                                    .is_some_and(|p| current.pointer(p).is_none()))
                        })
                        .cloned()
                        .collect();
                    let applied = serde_json::from_value::<json_patch::Patch>(Value::Array(ops))
                        .map_err(|e| e.to_string())
                        .and_then(|p| {
                            json_patch::patch(&mut updated, &p).map_err(|e| e.to_string())
                        });
                    if let Err(e) = applied {
                        return reply(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                    "status": "Failure", "reason": "Invalid", "code": 422,
                                    "message": format!("{target}: {e}")}),
                        );
                    }
                } else {
                    merge(&mut updated, &patch);
                }
                updated["metadata"]["resourceVersion"] =
                    current["metadata"]["resourceVersion"].clone();
                if updated == current {
                    // Like the apiserver: a no-op write changes nothing.
                    return reply(StatusCode::OK, &current);
                }
                updated["metadata"]["resourceVersion"] = json!(state.bump());
                let finalized = updated["metadata"]["finalizers"]
                    .as_array()
                    .is_none_or(|f| f.is_empty());
                if updated["metadata"].get("deletionTimestamp").is_some() && finalized {
                    state.objects.remove(&target);
                    state.notify(&target, "DELETED", &updated);
                } else {
                    state.objects.insert(target.clone(), updated.clone());
                    state.notify(&target, "MODIFIED", &updated);
                }
                reply(StatusCode::OK, &updated)
            }
            _ => reply(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "reason": "MethodNotAllowed", "code": 405,
                        "message": "not supported by the fake"}),
            ),
        }
    }
}

/// `/api/v1/secrets`, `/apis/g/v/namespaces/ns/luns`: an even number of
/// segments after the group/version prefix means a collection.
fn is_collection(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rest = match segments.first() {
        Some(&"api") => &segments[2.min(segments.len())..],
        Some(&"apis") => &segments[3.min(segments.len())..],
        _ => return false,
    };
    // [plural] or [namespaces, ns, plural]
    rest.len() == 1 || rest.len() == 3 && rest[0] == "namespaces"
}
