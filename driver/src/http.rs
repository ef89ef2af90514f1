//! A node's HTTP/1.1 front (hyper): `/healthz` and `/metrics` on every node, and on a gateway
//! the users' routes, each request handed to the gateway component as a [`Request`] from an
//! in-process client ([`HTTP_CLIENT`]) and answered with the component's [`Response`]:
//!
//! | method and path | route | body of the answer |
//! | --- | --- | --- |
//! | `GET` a path whose last segment has a file extension (`/static/12.js`) | `static` | `ok` |
//! | any other `GET` (`/users/12`) | `read` | the value, or `null` |
//! | `POST` or `PUT` (`/users/12`, the value as the body or `?value=`) | `write` | `ok` |
//!
//! The key is the path's last number (a path without one is keyed by its hash). The status is
//! the component's (200, 429, 500, 502, 503, 504); a request the component has not answered
//! in [`ANSWER_TIMEOUT`] is a 504. Every answer carries `x-request-id` (the client's, or the
//! number the gateway knows the request by, which its access log names). Shutdown drains: the
//! listener closes, requests in flight are answered, then [`serve`] returns. A client that
//! does not finish its request's headers within [`HEADER_READ_TIMEOUT`] is cut off (a
//! slow-headers client holds no connection forever, as nginx's `client_header_timeout`), and a
//! request whose client went away leaves nothing waiting behind it.

use crate::node::NodeLink;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use minitwin_components::msg::{Request, Response, Route, Status};
use minitwin_components::rng::fnv1a;
use minitwin_components::{Msg, NodeId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The node id the HTTP front speaks to its gateway component as.
pub const HTTP_CLIENT: NodeId = u32::MAX - 1;
/// How long a user's request may wait for the component.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request's headers (nginx's `client_header_timeout`
/// is 60 s, hyper's default 30 s). hyper times the wait for the next request from the last
/// answer, so this also closes a keep-alive connection left idle this long (nginx's
/// `keepalive_timeout` is 75 s): a client keeping idle connections longer may see its next
/// request on one cut.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Bodies larger than this are refused (413).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How a node's HTTP front is set up.
#[derive(Clone, Debug)]
pub struct FrontConfig {
    /// The node's role, as `/healthz` names it.
    pub role: String,
    /// Serves the users' routes (a gateway); otherwise `/healthz` and `/metrics` only.
    pub gateway: bool,
    /// How long shutdown waits for requests in flight.
    pub drain: Duration,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
}

impl FrontConfig {
    pub fn new(role: &str, gateway: bool, drain: Duration) -> FrontConfig {
        FrontConfig {
            role: role.to_string(),
            gateway,
            drain,
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// Requests handed to the component and not answered yet.
#[derive(Default)]
struct Pending {
    next_id: AtomicU64,
    waiting: Mutex<BTreeMap<u64, oneshot::Sender<Response>>>,
}

/// A request's place in [`Pending`], removed however the request ends: answered, timed out,
/// refused, or dropped because its client went away.
struct Waiting {
    pending: Arc<Pending>,
    id: u64,
}

impl Pending {
    /// Numbers a request and waits for its answer on `tx`, for as long as the returned
    /// [`Waiting`] lives.
    #[must_use = "the request stops waiting when its Waiting is dropped"]
    fn wait_for(self: &Arc<Self>, tx: oneshot::Sender<Response>) -> Waiting {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.waiting.lock().expect("pending lock").insert(id, tx);
        Waiting {
            pending: self.clone(),
            id,
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.pending
            .waiting
            .lock()
            .expect("pending lock")
            .remove(&self.id);
    }
}

struct Front {
    link: NodeLink,
    /// None: not a gateway (only `/healthz` and `/metrics`).
    pending: Option<Arc<Pending>>,
    role: String,
}

/// What a path and method ask of the gateway.
pub fn classify(
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<(Route, u64, u64), String> {
    let last = path.rsplit('/').next().unwrap_or("");
    let key = path
        .split(|c: char| !c.is_ascii_digit())
        .rfind(|s| !s.is_empty())
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or_else(|| fnv1a(path.as_bytes()));
    match *method {
        Method::GET | Method::HEAD if last.contains('.') => Ok((Route::Static, key, 0)),
        Method::GET | Method::HEAD => Ok((Route::Read, key, 0)),
        Method::POST | Method::PUT => {
            let from_query = query.and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("value="))
                    .map(str::to_string)
            });
            let text = match from_query {
                Some(v) => v,
                None => String::from_utf8_lossy(body).trim().to_string(),
            };
            let value = text.parse::<u64>().map_err(|_| {
                format!("a write's value must be a number (body or ?value=), got {text:?}")
            })?;
            Ok((Route::Write, key, value))
        }
        _ => Err(format!(
            "method {method} is not one of GET, HEAD, POST, PUT"
        )),
    }
}

type Answer = hyper::Response<Full<Bytes>>;

fn answer(status: StatusCode, request_id: &str, body: impl Into<Bytes>) -> Answer {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = request_id.parse() {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

async fn handle(front: Arc<Front>, req: hyper::Request<Incoming>) -> Result<Answer, hyper::Error> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let method = req.method().clone();
    let client_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match (method.clone(), path.as_str()) {
        (Method::GET, "/healthz") => {
            return Ok(answer(
                StatusCode::OK,
                client_id.as_deref().unwrap_or(""),
                format!("ok {}\n", front.role),
            ))
        }
        (Method::GET, "/metrics") => {
            let Some(text) = front.link.metrics_text().await else {
                return Ok(answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "",
                    "node stopped\n",
                ));
            };
            let mut r = answer(StatusCode::OK, "", text);
            r.headers_mut().insert(
                "content-type",
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return Ok(r);
        }
        _ => {}
    }
    let Some(pending) = front.pending.clone() else {
        return Ok(answer(
            StatusCode::NOT_FOUND,
            client_id.as_deref().unwrap_or(""),
            format!("a {} node serves /healthz and /metrics only; the users' routes are on the gateways\n", front.role),
        ));
    };
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                client_id.as_deref().unwrap_or(""),
                format!("{e}\n"),
            ))
        }
    };
    let (route, key, value) = match classify(&method, &path, query.as_deref(), &body) {
        Ok(x) => x,
        Err(why) => {
            return Ok(answer(
                StatusCode::BAD_REQUEST,
                client_id.as_deref().unwrap_or(""),
                format!("{why}\n"),
            ))
        }
    };
    let (tx, rx) = oneshot::channel();
    let waiting = pending.wait_for(tx);
    let id = waiting.id;
    let request_id = client_id.unwrap_or_else(|| id.to_string());
    let msg = Msg::Request(Request {
        id,
        route,
        key,
        value,
    });
    if let Err(why) = front.link.inject(HTTP_CLIENT, msg) {
        return Ok(answer(
            StatusCode::SERVICE_UNAVAILABLE,
            &request_id,
            format!("{why}\n"),
        ));
    }
    tracing::debug!(target: "minitwin::http", id, request_id = %request_id, %method, path = %path, "request");
    let got = tokio::time::timeout(ANSWER_TIMEOUT, rx).await;
    let r = match got {
        Ok(Ok(r)) => r,
        _ => {
            return Ok(answer(
                StatusCode::GATEWAY_TIMEOUT,
                &request_id,
                "no answer from the gateway\n",
            ));
        }
    };
    let status = StatusCode::from_u16(r.status.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match (route, r.status) {
        (Route::Read, Status::Ok) => r
            .value
            .map_or_else(|| "null".to_string(), |v| v.to_string()),
        (_, Status::Ok) => "ok".to_string(),
        (_, s) => format!("{}", s.code()),
    };
    Ok(answer(status, &request_id, body + "\n"))
}

/// Completes a waiting request with the component's answer (on the node's task: no hop).
fn complete(pending: &Pending, msg: Msg) {
    if let Msg::Response(r) = msg {
        if let Some(tx) = pending.waiting.lock().expect("pending lock").remove(&r.id) {
            let _ = tx.send(r);
        }
    }
}

/// Serves HTTP on `listener` until `stop` fires, then drains (up to `drain`) and returns the
/// number of connections still open when it gave up waiting.
pub async fn serve(
    listener: TcpListener,
    link: NodeLink,
    config: FrontConfig,
    mut stop: oneshot::Receiver<()>,
) -> usize {
    let pending = config.gateway.then(|| {
        let pending = Arc::new(Pending::default());
        let p = pending.clone();
        link.attach(HTTP_CLIENT, Arc::new(move |msg| complete(&p, msg)));
        pending
    });
    let front = Arc::new(Front {
        link,
        pending,
        role: config.role.clone(),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "http accept failed; trying again in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let front = front.clone();
                let conn = http1::Builder::new()
                    .keep_alive(true)
                    .timer(TokioTimer::new())
                    .header_read_timeout(config.header_read_timeout)
                    .serve_connection(TokioIo::new(stream), service_fn(move |req| handle(front.clone(), req)));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "http connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    match tokio::time::timeout(config.drain, graceful.shutdown()).await {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_leaves_nothing_waiting_however_it_ends() {
        let pending = Arc::new(Pending::default());
        let (tx, _rx) = oneshot::channel();
        let waiting = pending.wait_for(tx);
        let (tx, rx) = oneshot::channel();
        let answered = pending.wait_for(tx);
        assert_eq!(pending.waiting.lock().unwrap().len(), 2);
        drop(waiting); // the client went away: hyper drops the request's future
        assert_eq!(pending.waiting.lock().unwrap().len(), 1);
        complete(
            &pending,
            Msg::Response(Response {
                id: answered.id,
                status: Status::Ok,
                value: None,
            }),
        );
        assert!(rx.blocking_recv().is_ok(), "the answer reached its request");
        assert!(pending.waiting.lock().unwrap().is_empty());
        drop(answered); // after its answer: nothing left to remove, nothing else removed
    }

    #[test]
    fn paths_and_methods_map_to_the_twins_routes() {
        let get = Method::GET;
        assert_eq!(
            classify(&get, "/static/12.js", None, b""),
            Ok((Route::Static, 12, 0))
        );
        assert_eq!(
            classify(&get, "/users/12", None, b""),
            Ok((Route::Read, 12, 0))
        );
        assert_eq!(
            classify(&Method::PUT, "/users/12", None, b"99\n"),
            Ok((Route::Write, 12, 99))
        );
        assert_eq!(
            classify(&Method::POST, "/users/7", Some("a=1&value=5"), b""),
            Ok((Route::Write, 7, 5))
        );
        assert!(classify(&Method::POST, "/users/7", None, b"lots")
            .unwrap_err()
            .contains("must be a number"));
        assert!(classify(&Method::DELETE, "/users/7", None, b"")
            .unwrap_err()
            .contains("DELETE"));
        let (route, key, _) = classify(&get, "/home", None, b"").unwrap();
        assert_eq!((route, key), (Route::Read, fnv1a(b"/home")));
    }
}
