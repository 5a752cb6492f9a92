//! Helper process for the durability tests: hammers one execution file through the real
//! `ExecutionTracker`.
//!
//! `baton-stress save PLAN.json EXEC.json WRITER N`: record N replans tagged `WRITER:i`.
//! `baton-stress churn PLAN.json EXEC.json`: record replans with a large payload until killed.

use std::path::Path;
use std::process::ExitCode;

use baton_plan::{ExecutionTracker, Plan};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, plan_path, exec_path) = match args.as_slice() {
        [mode, plan, exec, ..] => (mode.as_str(), plan, exec),
        _ => {
            eprintln!("usage: baton-stress save|churn PLAN.json EXEC.json [WRITER N]");
            return ExitCode::from(2);
        }
    };
    let plan: Plan = match baton_store::read_json(Path::new(plan_path)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(id) = plan.id.clone() else {
        eprintln!("{plan_path}: the plan has no id");
        return ExitCode::from(2);
    };
    let mut tracker = match ExecutionTracker::open(exec_path, id, plan.clone()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(3);
        }
    };
    let result = match (mode, &args[3..]) {
        ("save", [writer, n]) => {
            let n: u32 = n.parse().unwrap_or(0);
            (0..n).try_for_each(|i| {
                tracker
                    .record_replan(plan.clone(), &format!("{writer}:{i}"))
                    .map(drop)
            })
        }
        ("churn", []) => {
            let padding = "x".repeat(4096);
            loop {
                let next = tracker.load().map(|e| e.revision).unwrap_or(0) + 1;
                if let Err(e) = tracker.record_replan(plan.clone(), &format!("{next}:{padding}")) {
                    break Err(e);
                }
            }
        }
        _ => {
            eprintln!("usage: baton-stress save|churn PLAN.json EXEC.json [WRITER N]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
