//! `baton report html PLAN`: one self-contained HTML file (inline CSS and JS, no network) with
//! the timeline of a run — batches and agents as bars on a time axis, every attempt, retries,
//! cache hits, gate verdicts with their findings, replans, links to the logs — or, with
//! `--format chrome-trace`, the same as a Chrome trace that Perfetto opens.
//!
//! The page carries the timeline as JSON and draws it with a small script; every text from
//! the run (findings, agent output) is set as text, never parsed as HTML.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use baton_plan::{Execution, store as plan_store};
use baton_report::exit;
use clap::{Args, ValueEnum};

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct ReportHtmlArgs {
    /// A plan id, a unique suffix of one, or `latest`.
    plan: String,
    /// Where to write it (default: `.baton/executions/<plan>/report.html`, or `trace.json`).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// `html` (the page) or `chrome-trace` (JSON for Perfetto / chrome://tracing).
    #[arg(long, value_enum, default_value_t = HtmlFormat::Html)]
    format: HtmlFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HtmlFormat {
    Html,
    ChromeTrace,
}

pub fn run(ctx: &Ctx, a: ReportHtmlArgs) -> CliResult {
    let dir = ctx.state_dir()?;
    let id = plan_store::resolve_plan_id(&dir, &a.plan)?;
    let plan = plan_store::load_stored(&dir, &id)?;
    let exec_path = dir.execution(id.as_str());
    if !exec_path.exists() {
        return Err(CliError::input(format!(
            "plan {id} has not run yet; there is no timeline to draw (`baton run {id}` first)"
        )));
    }
    let exec: Execution = baton_store::read_versioned(&exec_path)?;
    let log = baton_metrics::MetricsLog::new(dir.metrics());
    let events = if log.path().exists() {
        log.read_all()
            .map(|(e, _)| e)
            .map_err(|e| CliError::env(e.to_string()))?
    } else {
        Vec::new()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let timeline = baton_run::timeline::build(&plan, &exec, &events, now);
    let run_dir = dir.executions_dir().join(id.as_str());
    let (default_name, bytes) = match a.format {
        HtmlFormat::Html => ("report.html", render(&timeline).into_bytes()),
        HtmlFormat::ChromeTrace => {
            let mut v = serde_json::to_vec_pretty(&baton_run::timeline::chrome_trace(&timeline))
                .map_err(|e| CliError::env(format!("cannot serialize the trace: {e}")))?;
            v.push(b'\n');
            ("trace.json", v)
        }
    };
    let out = a.output.unwrap_or_else(|| run_dir.join(default_name));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::env(format!("cannot create {}: {e}", parent.display())))?;
    }
    baton_store::write_atomic(&out, &bytes)?;
    if ctx.json {
        ctx.print_json(
            &serde_json::json!({"plan": id.to_string(), "path": out, "format": match a.format {
                HtmlFormat::Html => "html",
                HtmlFormat::ChromeTrace => "chrome-trace",
            }}),
        )?;
    } else {
        ctx.say(format!("wrote {}", out.display()));
    }
    Ok(exit::OK)
}

/// The page: the timeline as inline JSON (with `</` escaped so no text can close the script)
/// and the script that draws it.
pub fn render(t: &baton_run::timeline::Timeline) -> String {
    let data = serde_json::to_string(t)
        .unwrap_or_else(|_| "null".to_owned())
        .replace("</", "<\\/")
        .replace("<!--", "<\\!--");
    let title = html_escape(&format!("baton run {} — {}", t.plan, t.title));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\
<title>{title}</title><style>{CSS}</style></head>\n<body><h1>{title}</h1>\
<p id=\"summary\"></p><div id=\"timeline\"></div><h2>Gates</h2><div id=\"gates\"></div>\
<h2>Replans</h2><ul id=\"replans\"></ul>\
<noscript>This page draws the timeline with inline JavaScript; enable it, or use \
<code>baton report html --format chrome-trace</code>.</noscript>\n\
<script id=\"data\" type=\"application/json\">{data}</script>\n<script>{JS}</script></body></html>\n"
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.3em}.row{display:flex;align-items:center;height:24px}\
.label{width:12em;flex:none;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\
.lane{position:relative;flex:1;height:18px;background:#f4f4f4;border-radius:3px}\
.batch .label{font-weight:bold}.batch .lane{background:#e8eef8}\
.bar{position:absolute;top:2px;height:14px;border-radius:3px;min-width:3px;font-size:10px;\
color:#fff;overflow:hidden;white-space:nowrap;text-decoration:none;padding-left:2px;box-sizing:border-box}\
.ok{background:#2e8b57}.fail{background:#c0392b}.running{background:#e6a700}\
.cache{background:#7f8c8d;border:1px dashed #333}.span{background:#9bb3d9}\
.gate{position:absolute;top:0;width:4px;height:18px}.gate.pass{background:#2e8b57}\
.gate.failed{background:#c0392b}.verdict{margin:.4em 0;padding:.4em;border-left:4px solid #2e8b57}\
.verdict.failed{border-color:#c0392b}.finding{font-family:monospace;white-space:pre-wrap}\
.axis{color:#777;font-size:11px}";

const JS: &str = r#"(function(){
var t=JSON.parse(document.getElementById('data').textContent);
var span=Math.max(1,t.end_ms-t.start_ms);
function pct(ms){return (100*(ms-t.start_ms)/span).toFixed(3)+'%';}
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!=null)e.textContent=text;return e;}
function secs(ms){return (ms/1000).toFixed(1)+'s';}
var n=0,hits=0;
var root=document.getElementById('timeline');
var axis=el('div','row axis');axis.appendChild(el('div','label','time'));
var al=el('div','lane');al.style.background='none';
al.appendChild(el('span',null,'0s \u2192 '+secs(span)));axis.appendChild(al);root.appendChild(axis);
t.batches.forEach(function(b){
  var row=el('div','row batch');row.dataset.batch=b.id;
  row.appendChild(el('div','label','batch '+b.id+' ('+b.status+')'));
  var lane=el('div','lane');
  if(b.start_ms!=null){var s=el('div','bar span');s.style.left=pct(b.start_ms);
    s.style.width='calc('+pct(b.end_ms||t.end_ms)+' - '+pct(b.start_ms)+')';lane.appendChild(s);}
  b.gates.forEach(function(g){var m=el('div','gate '+(g.passed?'pass':'failed'));
    m.style.left=pct(g.at_ms);m.title=(g.passed?'gate passed':'gate failed: '+g.findings.join('; '));lane.appendChild(m);});
  row.appendChild(lane);root.appendChild(row);
  b.agents.forEach(function(a){
    var r=el('div','row agent');r.dataset.agent=a.id;
    r.appendChild(el('div','label','\u00a0\u00a0'+a.id+' ('+a.status+')'));
    var l=el('div','lane');
    a.attempts.forEach(function(x){
      n++;if(x.cache_hit)hits++;
      var cls=x.cache_hit?'cache':(x.ok===true?'ok':(x.ok===false?'fail':'running'));
      var bar=el('a','bar attempt '+cls,'#'+x.attempt+(x.cache_hit?' [cache hit]':''));
      bar.href=x.log;bar.dataset.agent=a.id;bar.dataset.attempt=x.attempt;
      bar.style.left=pct(x.start_ms);
      bar.style.width='calc('+pct(x.end_ms)+' - '+pct(x.start_ms)+')';
      bar.title=a.id+' attempt '+x.attempt+': '+cls+', '+secs(x.end_ms-x.start_ms)+' (click for the log)';
      l.appendChild(bar);});
    r.appendChild(l);root.appendChild(r);});
});
var gates=document.getElementById('gates');
t.batches.forEach(function(b){b.gates.forEach(function(g,i){
  var d=el('div','verdict'+(g.passed?'':' failed'));
  d.appendChild(el('div',null,'batch '+b.id+', gate '+(i+1)+': '+(g.passed?'passed':'failed at the '+(g.failed_step||'gate')+' step')));
  g.findings.forEach(function(f){d.appendChild(el('div','finding',f));});
  if(g.report){d.appendChild(el('div','axis','report: '+g.report));}
  gates.appendChild(d);});});
var rp=document.getElementById('replans');
t.replans.forEach(function(r){rp.appendChild(el('li','replan',r.text));});
if(!t.replans.length){rp.appendChild(el('li',null,'none'));}
document.getElementById('summary').textContent='plan '+t.plan+' '+t.status+' \u2014 '+t.batches.length+
  ' batch(es), '+n+' attempt(s), '+hits+' from cache, '+secs(span);
document.body.dataset.rendered='yes';
})();"#;
