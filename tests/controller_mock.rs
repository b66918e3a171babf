//! The controllers against kube's `tower-test` mock apiserver: the finalizer
//! is added before anything else, status is written by server-side apply
//! under the operator's field manager, an unreachable array becomes a
//! condition, deletion under Retain touches no array, and a Lun still listed
//! by a target is held with a condition naming the target.

use std::sync::Arc;

use array_operator::controller::Context;
use array_operator::controller::managed::reconcile;
use array_operator::crd::Lun;
use array_operator::crd::lun::LunSpec;
use array_operator::crd::shared::{
    ANNOTATION_CREATE_SUCCEEDED, ANNOTATION_EXTERNAL_NAME, ArrayRef, DeletionPolicy, FINALIZER,
};
use http::{Request, Response, StatusCode};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::client::Body;
use kube::{Client, Resource};
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn context() -> (Arc<Context>, ApiHandle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    (Arc::new(Context::new(client, "test")), handle)
}

fn lun(name: &str) -> Lun {
    let mut l = Lun::new(
        name,
        LunSpec {
            array_ref: ArrayRef {
                name: "dsm1".into(),
            },
            name: None,
            size: Quantity("10Gi".into()),
            location: Some("/volume1".into()),
            pool: None,
            thin_provisioning: true,
            description: None,
            synology: None,
            ngxstorage: None,
            source: None,
            management_policy: Default::default(),
            deletion_policy: None,
        },
    );
    l.meta_mut().namespace = Some("ns1".into());
    l.meta_mut().generation = Some(1);
    l.meta_mut().uid = Some("uid-1".into());
    l
}

fn finalized(mut l: Lun) -> Lun {
    l.meta_mut().finalizers = Some(vec![FINALIZER.to_string()]);
    l
}

fn deleting(mut l: Lun) -> Lun {
    l.meta_mut().deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-11-22T10:00:00Z".parse().expect("time"),
    ));
    l
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
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
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

fn not_found(kind: &str, name: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": format!("{kind} \"{name}\" not found"), "reason": "NotFound", "code": 404})
}

#[tokio::test]
async fn the_finalizer_is_added_before_anything_else() {
    let (ctx, mut api) = context();
    let obj = lun("db");
    let server = tokio::spawn(async move {
        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(
            uri.starts_with("/apis/array-operator.io/v1alpha1/namespaces/ns1/luns/db?"),
            "{uri}"
        );
        let text = body.to_string();
        assert!(text.contains(FINALIZER), "{text}");
        respond(
            send,
            StatusCode::OK,
            &serde_json::to_value(finalized(lun("db"))).expect("json"),
        );
        api
    });
    reconcile(Arc::new(obj), ctx).await.expect("reconcile");
    let mut api = server.await.expect("server");
    // Nothing else: the array is not touched until the finalizer is in place.
    if let Ok(Some((r, _))) =
        tokio::time::timeout(std::time::Duration::from_millis(100), api.next_request()).await
    {
        panic!("unexpected request {} {}", r.method(), r.uri());
    }
}

#[tokio::test]
async fn a_missing_array_becomes_a_condition_written_by_server_side_apply() {
    let (ctx, mut api) = context();
    let obj = finalized(lun("db"));
    let server = tokio::spawn(async move {
        let (method, uri, _, send) = next(&mut api).await;
        assert_eq!(method, http::Method::GET);
        assert!(
            uri.starts_with("/apis/array-operator.io/v1alpha1/namespaces/ns1/storagearrays/dsm1"),
            "{uri}"
        );
        respond(
            send,
            StatusCode::NOT_FOUND,
            &not_found("storagearrays", "dsm1"),
        );

        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(
            uri.starts_with("/apis/array-operator.io/v1alpha1/namespaces/ns1/luns/db/status?"),
            "{uri}"
        );
        assert!(
            uri.contains("fieldManager=array-operator") && uri.contains("force=true"),
            "{uri}"
        );
        assert_eq!(body["apiVersion"], "array-operator.io/v1alpha1");
        assert_eq!(body["kind"], "Lun");
        assert!(
            body.get("spec").is_none(),
            "the operator never writes spec: {body}"
        );
        let conditions = body["status"]["conditions"]
            .as_array()
            .expect("conditions")
            .clone();
        let synced = conditions
            .iter()
            .find(|c| c["type"] == "Synced")
            .expect("Synced");
        assert_eq!(synced["status"], "False");
        assert_eq!(synced["reason"], "ArrayUnreachable");
        assert!(
            synced["message"]
                .as_str()
                .expect("message")
                .contains("spec.arrayRef"),
            "{synced}"
        );
        assert_eq!(synced["observedGeneration"], 1);
        let ready = conditions
            .iter()
            .find(|c| c["type"] == "Ready")
            .expect("Ready");
        assert_eq!(ready["status"], "False");
        respond(
            send,
            StatusCode::OK,
            &serde_json::to_value(finalized(lun("db"))).expect("json"),
        );
    });
    let action = reconcile(Arc::new(obj), ctx).await.expect("reconcile");
    server.await.expect("server");
    assert!(
        format!("{action:?}").contains("requeue_after: Some"),
        "{action:?}"
    );
}

#[tokio::test]
async fn deleting_under_retain_only_removes_the_finalizer() {
    let (ctx, mut api) = context();
    let mut obj = deleting(finalized(lun("db")));
    obj.spec.deletion_policy = Some(DeletionPolicy::Retain);
    obj.meta_mut().annotations =
        Some([(ANNOTATION_EXTERNAL_NAME.to_string(), "uuid-1".to_string())].into());
    let server = tokio::spawn(async move {
        // The registry looks the array up; under Retain nothing else is asked.
        let (method, uri, _, send) = next(&mut api).await;
        assert_eq!(method, http::Method::GET, "{uri}");
        respond(
            send,
            StatusCode::NOT_FOUND,
            &not_found("storagearrays", "dsm1"),
        );
        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(
            uri.starts_with("/apis/array-operator.io/v1alpha1/namespaces/ns1/luns/db?"),
            "{uri}"
        );
        let text = body.to_string();
        assert!(
            text.contains("remove") || text.contains("\"finalizers\":[]"),
            "{text}"
        );
        let mut done = lun("db");
        done.meta_mut().finalizers = None;
        respond(
            send,
            StatusCode::OK,
            &serde_json::to_value(done).expect("json"),
        );
    });
    reconcile(Arc::new(obj), ctx).await.expect("cleanup");
    server.await.expect("server");
}

#[tokio::test]
async fn deleting_a_lun_a_target_still_lists_is_held_with_the_target_named() {
    let (ctx, mut api) = context();
    let mut obj = deleting(finalized(lun("db")));
    obj.meta_mut().annotations = Some(
        [
            (ANNOTATION_EXTERNAL_NAME.to_string(), "uuid-1".to_string()),
            (
                ANNOTATION_CREATE_SUCCEEDED.to_string(),
                "2026-11-22T09:00:00.000000000Z".to_string(),
            ),
        ]
        .into(),
    );
    let server = tokio::spawn(async move {
        let (_, _, _, send) = next(&mut api).await;
        respond(
            send,
            StatusCode::NOT_FOUND,
            &not_found("storagearrays", "dsm1"),
        );
        let (method, uri, _, send) = next(&mut api).await;
        assert_eq!(method, http::Method::GET);
        assert!(
            uri.starts_with("/apis/array-operator.io/v1alpha1/namespaces/ns1/iscsitargets"),
            "{uri}"
        );
        respond(
            send,
            StatusCode::OK,
            &json!({
                "apiVersion": "array-operator.io/v1alpha1", "kind": "IscsiTargetList", "metadata": {},
                "items": [{
                    "apiVersion": "array-operator.io/v1alpha1", "kind": "IscsiTarget",
                    "metadata": {"name": "db-target", "namespace": "ns1"},
                    "spec": {"arrayRef": {"name": "dsm1"}, "luns": ["db"]}
                }]
            }),
        );
        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(uri.contains("/luns/db/status?"), "{uri}");
        let ready = body["status"]["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .find(|c| c["type"] == "Ready")
            .expect("Ready")
            .clone();
        assert_eq!(ready["reason"], "Deleting");
        assert!(
            ready["message"]
                .as_str()
                .expect("msg")
                .contains("db-target"),
            "{ready}"
        );
        respond(
            send,
            StatusCode::OK,
            &serde_json::to_value(deleting(finalized(lun("db")))).expect("json"),
        );
        api
    });
    let err = reconcile(Arc::new(obj), ctx).await.expect_err("held");
    assert!(err.to_string().contains("held"), "{err}");
    let mut api = server.await.expect("server");
    // The finalizer stays: no further PATCH removing it.
    if let Ok(Some((r, _))) =
        tokio::time::timeout(std::time::Duration::from_millis(100), api.next_request()).await
    {
        panic!("unexpected request {} {}", r.method(), r.uri());
    }
}

/// The whole Apply path against a simulated DSM: the StorageArray and its
/// Secrets are read, the create is bracketed by the crash-safety
/// annotations, the status is applied, and the Created Event is published.
#[tokio::test]
async fn a_create_records_pending_then_succeeded_then_status_then_the_event() {
    use array_operator::crd::shared::ANNOTATION_CREATE_PENDING;
    use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSimConfig};
    use base64::Engine as _;

    let sim = array_operator::sim::dsm::start(DsmSimConfig::default())
        .await
        .expect("simulator");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let storage_array = json!({
        "apiVersion": "array-operator.io/v1alpha1", "kind": "StorageArray",
        "metadata": {"name": "dsm1", "namespace": "ns1", "uid": "sa-uid", "generation": 1},
        "spec": {"vendor": "Synology", "endpoint": sim.base_url(),
                 "credentialsSecretRef": {"name": "creds"},
                 "tls": {"caSecretRef": {"name": "ca", "key": "ca.crt"}}}
    });
    let creds = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "ns1", "resourceVersion": "7"},
        "data": {"username": b64(DEFAULT_USERNAME), "password": b64(DEFAULT_PASSWORD)}});
    let ca = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "ca", "namespace": "ns1", "resourceVersion": "8"},
        "data": {"ca.crt": b64(sim.ca_pem().expect("TLS"))}});

    let (ctx, mut api) = context();
    let obj = finalized(lun("db"));
    let server = tokio::spawn(async move {
        for expected in ["storagearrays/dsm1", "secrets/creds", "secrets/ca"] {
            let (method, uri, _, send) = next(&mut api).await;
            assert_eq!(method, http::Method::GET, "{uri}");
            assert!(uri.contains(expected), "expected {expected}, got {uri}");
            let body = match expected {
                "storagearrays/dsm1" => storage_array.clone(),
                "secrets/creds" => creds.clone(),
                _ => ca.clone(),
            };
            respond(send, StatusCode::OK, &body);
        }
        // The claims index: without a watch-fed store (no controller runs
        // here) it lists the Luns of the namespace.
        let (method, uri, _, send) = next(&mut api).await;
        assert_eq!(method, http::Method::GET);
        assert!(
            uri.starts_with("/apis/array-operator.io/v1alpha1/namespaces/ns1/luns?"),
            "{uri}"
        );
        respond(
            send,
            StatusCode::OK,
            &json!({"apiVersion": "array-operator.io/v1alpha1", "kind": "LunList",
                    "metadata": {"resourceVersion": "1"},
                    "items": [serde_json::to_value(finalized(lun("db"))).expect("json")]}),
        );
        // The pending mark goes in before the create call...
        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(
            uri.starts_with("/apis/array-operator.io/v1alpha1/namespaces/ns1/luns/db?"),
            "{uri}"
        );
        assert!(
            body["metadata"]["annotations"][ANNOTATION_CREATE_PENDING].is_string(),
            "{body}"
        );
        assert!(body.get("spec").is_none(), "{body}");
        respond(
            send,
            StatusCode::OK,
            &serde_json::to_value(finalized(lun("db"))).expect("json"),
        );
        // ...and the id and success after it.
        let (method, _, body, send) = next(&mut api).await;
        assert_eq!(method, http::Method::PATCH);
        let id = body["metadata"]["annotations"][ANNOTATION_EXTERNAL_NAME]
            .as_str()
            .expect("external-name recorded")
            .to_string();
        assert!(
            body["metadata"]["annotations"][ANNOTATION_CREATE_SUCCEEDED].is_string(),
            "{body}"
        );
        respond(
            send,
            StatusCode::OK,
            &serde_json::to_value(finalized(lun("db"))).expect("json"),
        );

        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(method, http::Method::PATCH);
        assert!(uri.contains("/luns/db/status?"), "{uri}");
        assert_eq!(body["status"]["externalId"], id.as_str());
        let text = body.to_string();
        assert!(
            !text.contains(DEFAULT_PASSWORD),
            "a credential reached the status"
        );
        respond(
            send,
            StatusCode::OK,
            &serde_json::to_value(finalized(lun("db"))).expect("json"),
        );

        let (method, uri, body, send) = next(&mut api).await;
        assert_eq!(method, http::Method::POST);
        assert!(
            uri.starts_with("/apis/events.k8s.io/v1/namespaces/ns1/events"),
            "{uri}"
        );
        assert_eq!(body["reason"], "Created");
        assert_eq!(body["type"], "Normal");
        assert_eq!(body["regarding"]["name"], "db");
        assert!(body["note"].as_str().expect("note").contains(&id), "{body}");
        assert!(
            !body.to_string().contains(DEFAULT_PASSWORD),
            "a credential reached an Event"
        );
        respond(send, StatusCode::OK, &body);
    });
    let action = reconcile(Arc::new(obj), ctx).await.expect("reconcile");
    server.await.expect("apiserver scenario");
    assert!(
        format!("{action:?}").contains("requeue_after: Some"),
        "{action:?}"
    );
    assert_eq!(
        sim.state().luns().iter().filter(|l| l.name == "db").count(),
        1
    );
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn storage_array(endpoint: &str, ca: bool) -> Value {
    let mut spec = json!({"vendor": "Synology", "endpoint": endpoint, "credentialsSecretRef": {"name": "creds"}});
    if ca {
        spec["tls"] = json!({"caSecretRef": {"name": "ca", "key": "ca.crt"}});
    }
    json!({
        "apiVersion": "array-operator.io/v1alpha1", "kind": "StorageArray",
        "metadata": {"name": "dsm1", "namespace": "ns1", "uid": "sa-uid", "generation": 1},
        "spec": spec
    })
}

fn secret(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": "ns1", "resourceVersion": "7"}, "data": data})
}

fn credentials() -> Value {
    use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME};
    secret(
        "creds",
        json!({"username": b64(DEFAULT_USERNAME), "password": b64(DEFAULT_PASSWORD)}),
    )
}

/// An array that cannot be reached is not asked again until its backoff
/// has passed, however many objects reconcile in between.
#[tokio::test]
async fn an_unreachable_array_is_not_hammered() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Something that accepts connections and hangs up: every attempt counts.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let (ctx, mut api) = context();
    let sa = storage_array(&format!("https://{addr}"), false);
    let server = tokio::spawn(async move {
        let mut messages = Vec::new();
        for _ in 0..2 {
            // Each reconcile reads the StorageArray and its Secret...
            for body in [sa.clone(), credentials()] {
                let (method, _, _, send) = next(&mut api).await;
                assert_eq!(method, http::Method::GET);
                respond(send, StatusCode::OK, &body);
            }
            // ...and reports the array unreachable.
            let (method, uri, body, send) = next(&mut api).await;
            assert_eq!(method, http::Method::PATCH);
            assert!(uri.contains("/luns/db/status?"), "{uri}");
            let synced = body["status"]["conditions"]
                .as_array()
                .expect("conditions")
                .iter()
                .find(|c| c["type"] == "Synced")
                .expect("Synced")
                .clone();
            assert_eq!(synced["reason"], "ArrayUnreachable");
            messages.push(synced["message"].as_str().expect("message").to_string());
            respond(
                send,
                StatusCode::OK,
                &serde_json::to_value(finalized(lun("db"))).expect("json"),
            );
            // The object's status did not say unreachable yet (the same
            // object is passed twice): a Warning Event says it.
            // (The second one continues the first's series: a PATCH.)
            let (method, uri, body, send) = next(&mut api).await;
            assert!(
                method == http::Method::POST || method == http::Method::PATCH,
                "{method} {uri}"
            );
            if method == http::Method::POST {
                assert_eq!(body["reason"], "ArrayUnreachable", "{body}");
                assert_eq!(body["type"], "Warning", "{body}");
            }
            respond(send, StatusCode::OK, &body);
        }
        messages
    });
    reconcile(Arc::new(finalized(lun("db"))), ctx.clone())
        .await
        .expect("first");
    let after_first = attempts.load(Ordering::SeqCst);
    assert!(after_first >= 1, "the first reconcile tried to connect");
    reconcile(Arc::new(finalized(lun("db"))), ctx)
        .await
        .expect("second");
    let messages = server.await.expect("scenario");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        after_first,
        "the second reconcile connected again"
    );
    assert!(
        messages[0].contains("StorageArray ns1/dsm1"),
        "{}",
        messages[0]
    );
    // Waiting out the backoff reads as the last failure: the condition
    // does not change (no countdown) until the next attempt.
    assert_eq!(messages[1], messages[0]);
}
