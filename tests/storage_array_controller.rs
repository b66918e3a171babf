//! The StorageArray controller against kube's `tower-test` mock apiserver
//! and a simulated DSM over loopback: a new StorageArray takes its in-use
//! finalizer and holds its Secrets before it connects, says `Reconciling`
//! while connecting and `Ready` after; a deleted one waits while a Lun still
//! references it, then releases its Secrets (keeping a user's own
//! finalizer) and itself. The stores are the reflector stores the
//! controller's watches fill, fed here by hand.

use std::sync::Arc;

use array_operator::controller::Context;
use array_operator::controller::holds::{IN_USE_FINALIZER, SECRET_FINALIZER, Stores};
use array_operator::controller::storage_array::{ArrayContext, reconcile};
use array_operator::crd::{Lun, StorageArray};
use http::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;
use kube::{Client, Resource};
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

type ApiHandle = Handle<Request<Body>, Response<Body>>;

/// A store already through its first list, holding `objects`.
fn store<K>(objects: Vec<K>) -> (reflector::Store<K>, Writer<K>)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&Event::Init);
    for o in objects {
        writer.apply_watcher_event(&Event::InitApply(o));
    }
    writer.apply_watcher_event(&Event::InitDone);
    (reader, writer)
}

struct Fixture {
    actx: Arc<ArrayContext>,
    api: ApiHandle,
    luns: Writer<Lun>,
}

fn fixture(arrays: Vec<StorageArray>, luns: Vec<Lun>, secrets: Vec<Value>) -> Fixture {
    let (service, api) = mock::pair::<Request<Body>, Response<Body>>();
    let ctx = Arc::new(Context::new(Client::new(service, "default"), "test"));
    let secrets = secrets
        .into_iter()
        .map(|s| serde_json::from_value::<PartialObjectMeta<Secret>>(s).expect("metadata"))
        .collect();
    let (lun_store, lun_writer) = store(luns);
    let actx = Arc::new(ArrayContext {
        ctx,
        stores: Stores {
            luns: lun_store,
            targets: store(vec![]).0,
            schedules: store(vec![]).0,
            plans: store(vec![]).0,
            machines: store(vec![]).0,
            secrets: store(secrets).0,
            listed: Vec::new(),
        },
        arrays: store(arrays).0,
    });
    Fixture {
        actx,
        api,
        luns: lun_writer,
    }
}

async fn next(
    handle: &mut ApiHandle,
) -> (
    http::Method,
    String,
    Value,
    mock::SendResponse<Response<Body>>,
) {
    let (request, send) = handle
        .next_request()
        .await
        .expect("the controller made a request");
    let method = request.method().clone();
    let uri = request.uri().to_string();
    let bytes = request.into_body().collect_bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (method, uri, body, send)
}

fn respond(send: mock::SendResponse<Response<Body>>, status: StatusCode, body: &Value) {
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(body).expect("json")))
            .expect("response"),
    );
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn storage_array(endpoint: &str, finalizers: &[&str], deleting: bool) -> Value {
    let mut sa = json!({
        "apiVersion": "array-operator.io/v1alpha1", "kind": "StorageArray",
        "metadata": {"name": "dsm1", "namespace": "ns1", "uid": "sa-uid", "generation": 1,
                     "resourceVersion": "10", "finalizers": finalizers},
        "spec": {"vendor": "Synology", "endpoint": endpoint,
                 "credentialsSecretRef": {"name": "creds"},
                 "tls": {"caSecretRef": {"name": "ca", "key": "ca.crt"}}}
    });
    if deleting {
        sa["metadata"]["deletionTimestamp"] = json!("2026-11-30T10:00:00Z");
    }
    sa
}

fn secret(name: &str, finalizers: &[&str], data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": "ns1", "resourceVersion": "7", "finalizers": finalizers},
           "data": data})
}

fn credentials(finalizers: &[&str]) -> Value {
    use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME};
    secret(
        "creds",
        finalizers,
        json!({"username": b64(DEFAULT_USERNAME), "password": b64(DEFAULT_PASSWORD)}),
    )
}

fn lun(name: &str) -> Lun {
    serde_json::from_value(json!({
        "apiVersion": "array-operator.io/v1alpha1", "kind": "Lun",
        "metadata": {"name": name, "namespace": "ns1", "finalizers": ["array-operator.io/cleanup"],
                     "deletionTimestamp": "2026-11-30T10:00:00Z"},
        "spec": {"arrayRef": {"name": "dsm1"}, "size": "1Gi"}
    }))
    .expect("lun")
}

/// Runs one reconcile, failing (not hanging) when the scripted apiserver
/// stopped answering, e.g. because one of its assertions failed.
async fn reconciled(
    sa: StorageArray,
    actx: &Arc<ArrayContext>,
) -> kube::runtime::controller::Action {
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        reconcile(Arc::new(sa), actx.clone()),
    )
    .await
    .expect("the reconcile finishes; see the scenario's panic above")
    .expect("reconcile")
}

fn condition(body: &Value, type_: &str) -> Value {
    body["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or_else(|| panic!("no {type_} in {body}"))
}

fn finalizers(body: &Value) -> Vec<String> {
    serde_json::from_value(body["metadata"]["finalizers"].clone()).expect("finalizers")
}

#[tokio::test]
async fn a_new_storage_array_holds_itself_and_its_secrets_then_connects_and_logs_out_at_shutdown() {
    use array_operator::sim::dsm::DsmSimConfig;
    let sim = array_operator::sim::dsm::start(DsmSimConfig::default())
        .await
        .expect("simulator");
    let sa_json = storage_array(&sim.base_url(), &[], false);
    let sa: StorageArray = serde_json::from_value(sa_json.clone()).expect("StorageArray");
    let ca = secret(
        "ca",
        &["user.example/keep"],
        json!({"ca.crt": b64(sim.ca_pem().expect("TLS"))}),
    );
    let mut f = fixture(vec![sa.clone()], vec![], vec![credentials(&[]), ca.clone()]);
    let served = sa_json.clone();
    let server = tokio::spawn(async move {
        // 1. The StorageArray's own finalizer, before anything else.
        let (method, uri, body, send) = next(&mut f.api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(
            uri.starts_with("/apis/array-operator.io/v1alpha1/namespaces/ns1/storagearrays/dsm1?"),
            "{uri}"
        );
        assert_eq!(finalizers(&body), [IN_USE_FINALIZER]);
        assert_eq!(body["metadata"]["resourceVersion"], "10", "{body}");
        respond(send, StatusCode::OK, &served);
        // 2. Both Secrets, each keeping its other finalizers.
        for (name, expected) in [
            ("ca", vec!["user.example/keep", SECRET_FINALIZER]),
            ("creds", vec![SECRET_FINALIZER]),
        ] {
            let (method, uri, body, send) = next(&mut f.api).await;
            assert_eq!(method, http::Method::PATCH);
            assert!(
                uri.starts_with(&format!("/api/v1/namespaces/ns1/secrets/{name}?")),
                "{uri}"
            );
            assert_eq!(finalizers(&body), expected, "{name}");
            assert!(body.get("data").is_none() && body.get("stringData").is_none());
            respond(
                send,
                StatusCode::OK,
                &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": body["metadata"]}),
            );
        }
        // 3. Reconciling while it connects.
        let (method, uri, body, send) = next(&mut f.api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(uri.contains("/storagearrays/dsm1/status?"), "{uri}");
        let reconciling = condition(&body, "Reconciling");
        assert_eq!(
            (
                reconciling["status"].as_str(),
                reconciling["reason"].as_str()
            ),
            (Some("True"), Some("Connecting"))
        );
        respond(send, StatusCode::OK, &served);
        // 4. The registry reads the StorageArray and its Secrets...
        for body in [served.clone(), credentials(&[SECRET_FINALIZER]), ca] {
            let (method, _, _, send) = next(&mut f.api).await;
            assert_eq!(method, http::Method::GET);
            respond(send, StatusCode::OK, &body);
        }
        // 5. ...and the status says Ready, not Reconciling, not Stalled.
        let (method, uri, body, send) = next(&mut f.api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(
            uri.contains("/storagearrays/dsm1/status?")
                && uri.contains("fieldManager=array-operator"),
            "{uri}"
        );
        for (t, s) in [
            ("Ready", "True"),
            ("Reconciling", "False"),
            ("Stalled", "False"),
            ("TLSVerified", "True"),
        ] {
            let c = condition(&body, t);
            assert_eq!(c["status"], s, "{t}: {c}");
            assert_eq!(c["observedGeneration"], 1, "{t}");
        }
        assert!(
            body["status"]["atArray"]["pools"]
                .as_array()
                .is_some_and(|p| !p.is_empty()),
            "{body}"
        );
        respond(send, StatusCode::OK, &served);
        f.api
    });
    reconciled(sa, &f.actx).await;
    let mut api = server.await.expect("scenario");
    if let Ok(Some((r, _))) =
        tokio::time::timeout(std::time::Duration::from_millis(100), api.next_request()).await
    {
        panic!("unexpected request {} {}", r.method(), r.uri());
    }
    assert!(sim.state().session_count() > 0);
    f.actx.ctx.arrays.close_all().await;
    assert_eq!(sim.calls().count("SYNO.API.Auth.logout"), 1);
}

#[tokio::test]
async fn a_deleted_storage_array_waits_for_its_lun_then_releases_its_secrets_and_itself() {
    let sa_json = storage_array("https://127.0.0.1:9", &[IN_USE_FINALIZER], true);
    let mut sa: StorageArray = serde_json::from_value(sa_json.clone()).expect("StorageArray");
    // Its status already describes this generation: no Connecting write.
    sa.status = serde_json::from_value(json!({"observedGeneration": 1, "conditions": [
        {"type": "Ready", "status": "True", "reason": "Available", "message": "connected",
         "lastTransitionTime": "2026-11-30T09:00:00Z", "observedGeneration": 1}]}))
    .expect("status");
    let mut f = fixture(
        vec![sa.clone()],
        vec![lun("db")],
        vec![
            credentials(&[SECRET_FINALIZER, "user.example/keep"]),
            secret("ca", &[SECRET_FINALIZER], json!({})),
        ],
    );
    let served = sa_json.clone();
    let server = tokio::spawn(async move {
        // While the Lun is there: no finalizer moves; the registry still
        // works for the deleted StorageArray (here its Secret read fails,
        // which becomes the condition), and Reconciling names the Lun.
        let (method, uri, _, send) = next(&mut f.api).await;
        assert_eq!(method, http::Method::GET, "{uri}");
        assert!(uri.contains("/storagearrays/dsm1"), "{uri}");
        respond(send, StatusCode::OK, &served);
        let (method, uri, _, send) = next(&mut f.api).await;
        assert_eq!(method, http::Method::GET);
        assert!(uri.contains("/secrets/creds"), "{uri}");
        respond(
            send,
            StatusCode::NOT_FOUND,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": "NotFound", "code": 404, "message": "secrets \"creds\" not found"}),
        );
        let (method, uri, body, send) = next(&mut f.api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(uri.contains("/storagearrays/dsm1/status?"), "{uri}");
        let reconciling = condition(&body, "Reconciling");
        assert_eq!(reconciling["reason"], "WaitingForReferrers");
        assert!(
            reconciling["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("Lun/db")),
            "{reconciling}"
        );
        assert_eq!(condition(&body, "Stalled")["reason"], "CredentialsMissing");
        respond(send, StatusCode::OK, &served);
        // Ready went from True to False: one Warning Event says why.
        let (method, uri, body, send) = next(&mut f.api).await;
        assert_eq!(method, http::Method::POST);
        assert!(
            uri.starts_with("/apis/events.k8s.io/v1/namespaces/ns1/events"),
            "{uri}"
        );
        assert_eq!(
            (body["type"].as_str(), body["reason"].as_str()),
            (Some("Warning"), Some("CredentialsMissing"))
        );
        assert_eq!(body["regarding"]["name"], "dsm1");
        respond(send, StatusCode::CREATED, &body);
        f.api
    });
    reconciled(sa.clone(), &f.actx).await;
    let mut api = server.await.expect("held scenario");

    // The Lun is gone: the Secrets are released, then the StorageArray.
    f.luns.apply_watcher_event(&Event::Delete(lun("db")));
    let server = tokio::spawn(async move {
        for (name, expected) in [("ca", vec![]), ("creds", vec!["user.example/keep"])] {
            let (method, uri, body, send) = next(&mut api).await;
            assert_eq!(method, http::Method::PATCH);
            assert!(
                uri.starts_with(&format!("/api/v1/namespaces/ns1/secrets/{name}?")),
                "{uri}"
            );
            assert_eq!(finalizers(&body), expected, "{name}");
            assert_eq!(body["metadata"]["resourceVersion"], "7");
            respond(
                send,
                StatusCode::OK,
                &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": body["metadata"]}),
            );
        }
        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(
            uri.starts_with("/apis/array-operator.io/v1alpha1/namespaces/ns1/storagearrays/dsm1?"),
            "{uri}"
        );
        assert!(finalizers(&body).is_empty(), "{body}");
        respond(
            send,
            StatusCode::OK,
            &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": body["metadata"]}),
        );
        api
    });
    let action = reconciled(sa, &f.actx).await;
    let mut api = server.await.expect("release scenario");
    assert!(
        format!("{action:?}").contains("requeue_after: None"),
        "{action:?}"
    );
    if let Ok(Some((r, _))) =
        tokio::time::timeout(std::time::Duration::from_millis(100), api.next_request()).await
    {
        panic!("nothing after the release, got {} {}", r.method(), r.uri());
    }
}
