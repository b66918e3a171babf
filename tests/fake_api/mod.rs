//! A small in-memory Kubernetes API for tests that run the operator as a
//! whole (`run_with_client`): it keeps objects by URL path, answers GET,
//! POST and PATCH (merge semantics, `null` deletes), lists every collection
//! as empty unless objects were stored under it, and holds watches open
//! until the client drops them. Every request is recorded.

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

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    seen: Vec<Seen>,
    resource_version: u64,
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
        state.resource_version += 1;
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
                obj["metadata"]["resourceVersion"] = json!(rv);
                state.objects.insert(full, obj.clone());
                reply(StatusCode::CREATED, &obj)
            }
            "PATCH" => {
                let Some(obj) = state.objects.get_mut(&path) else {
                    return not_found(&path);
                };
                merge(obj, &body);
                obj["metadata"]["resourceVersion"] = json!(rv);
                reply(StatusCode::OK, obj)
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
