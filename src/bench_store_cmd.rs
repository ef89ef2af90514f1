//! `minitwin bench-store`: closed-loop writers against one real store node; acknowledged
//! writes per second and their latency.

use crate::cli::BenchStoreArgs;
use hdrhistogram::Histogram;
use minitwin_components::msg::{StoreOp, StoreRequest, StoreResponse, StoreResult};
use minitwin_components::Msg;
use minitwin_driver::Client;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

pub fn main(args: BenchStoreArgs) -> u8 {
    match bench(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("minitwin bench-store: {e}");
            2
        }
    }
}

struct Outcome {
    acked: u64,
    errors: u64,
    latency: Histogram<u64>,
}

async fn writer(addr: SocketAddr, me: u32, for_s: f64) -> Result<Outcome, String> {
    let mut c = Client::connect(addr, 1_000_000 + me)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut out = Outcome {
        acked: 0,
        errors: 0,
        latency: Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds"),
    };
    let start = Instant::now();
    let mut id = 0u64;
    while start.elapsed().as_secs_f64() < for_s {
        id += 1;
        let key = u64::from(me) * 1_000_000_000 + id;
        let msg = Msg::Store(StoreRequest {
            id,
            op: StoreOp::Write { key, value: id },
        });
        let t = Instant::now();
        match c.call(&msg, Duration::from_secs(10)).await {
            Ok(Msg::StoreReply(StoreResponse {
                result: StoreResult::Written { .. },
                ..
            })) => {
                out.acked += 1;
                let _ = out.latency.record(t.elapsed().as_nanos() as u64);
            }
            Ok(_) => out.errors += 1,
            Err(e) => return Err(format!("writer {me}: {e}")),
        }
    }
    Ok(out)
}

fn bench(args: &BenchStoreArgs) -> Result<(), String> {
    let addr: SocketAddr = args.addr.parse().map_err(|_| {
        format!(
            "{}: give the store's host:port, e.g. 127.0.0.1:7103",
            args.addr
        )
    })?;
    if !(1..=10_000).contains(&args.clients) {
        return Err(format!("--clients {}: give 1 to 10000", args.clients));
    }
    if !(args.for_s.is_finite() && args.for_s > 0.0 && args.for_s <= 3600.0) {
        return Err(format!("--for {}: give 0 to 3600 seconds", args.for_s));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.clients)
            .map(|i| tokio::spawn(writer(addr, i, args.for_s)))
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.map_err(|e| e.to_string())?);
        }
        Ok::<_, String>(out)
    })?;
    let mut total = Outcome {
        acked: 0,
        errors: 0,
        latency: Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds"),
    };
    for r in results {
        let r = r?;
        total.acked += r.acked;
        total.errors += r.errors;
        total
            .latency
            .add(&r.latency)
            .map_err(|e| format!("histogram: {e}"))?;
    }
    let h = &total.latency;
    say!(
        "bench-store {}: {} clients for {} s: {} acknowledged writes ({:.0}/s), {} refused; latency p50 {:.3} ms, p99 {:.3} ms",
        args.addr,
        args.clients,
        args.for_s,
        total.acked,
        total.acked as f64 / args.for_s,
        total.errors,
        h.value_at_quantile(0.5) as f64 / 1e6,
        h.value_at_quantile(0.99) as f64 / 1e6
    );
    Ok(())
}
