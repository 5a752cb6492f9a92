//! Helper process for the metrics concurrency test: appends events one at a time through the
//! real `MetricsLog`, as many processes would.
//!
//! `baton-metrics-append LOG WRITER N`: append N `cache` events with details `writer=WRITER`
//! and `seq=0..N`, one locked append per event.

use std::process::ExitCode;
use std::time::SystemTime;

use baton_metrics::{Event, MetricsLog};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [log, writer, n] = args.as_slice() else {
        eprintln!("usage: baton-metrics-append LOG WRITER N");
        return ExitCode::from(2);
    };
    let Ok(n) = n.parse::<u32>() else {
        eprintln!("N must be a number, not {n:?}");
        return ExitCode::from(2);
    };
    let log = MetricsLog::new(log);
    for seq in 0..n {
        let result = Event::new("cache", SystemTime::now()).map(|mut e| {
            e.success = Some(seq % 2 == 0);
            e.duration_ms = Some(u64::from(seq));
            e.details.insert("writer".into(), writer.clone());
            e.details.insert("seq".into(), seq.to_string());
            e
        });
        let appended = match result {
            Ok(e) => log.append(&[e]).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = appended {
            eprintln!("{e}");
            return ExitCode::from(3);
        }
    }
    ExitCode::SUCCESS
}
