//! The client commands: `submit`, `jobs`, `job`, `cancel`, `explain`, `sites`.
//! Server and token come from flags or `SUANWANG_URL` / `SUANWANG_TOKEN`; human
//! output is aligned tables, `--json` prints the server's documents.

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use suanwang_client::Client;
use suanwang_model::SimDuration;
use suanwang_sim::report::table;

#[derive(Debug, Args, Clone)]
pub struct Remote {
    /// Control plane URL.
    #[arg(
        long,
        env = "SUANWANG_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// API token.
    #[arg(long, env = "SUANWANG_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
}

impl Remote {
    pub(crate) fn client(&self) -> Client {
        Client::new(&self.url, self.token.clone())
    }
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    remote: Remote,
    /// CPU cores.
    #[arg(long)]
    cpus: Option<u32>,
    /// Memory, GiB.
    #[arg(long)]
    mem: Option<u32>,
    /// Accelerators.
    #[arg(long, requires = "gpu_model")]
    gpus: Option<u32>,
    /// Accelerator model (a800, h800, h20, l40s, rtx4090, ascend910b).
    #[arg(long)]
    gpu_model: Option<String>,
    /// Run time (90s, 15m, 2h, 1d, 1h30m).
    #[arg(long)]
    duration: Option<SimDuration>,
    /// Deadline after submission (same syntax).
    #[arg(long)]
    deadline: Option<SimDuration>,
    /// Input data: SIZE@PLACE, e.g. 500GiB@chongqing (GiB, TiB or GB).
    #[arg(long)]
    data: Option<String>,
    /// Submitting region.
    #[arg(long)]
    origin: Option<String>,
    /// Latency target: MS@REGION, the most round-trip milliseconds from that
    /// region to the site (e.g. 30@chongqing).
    #[arg(long)]
    latency: Option<String>,
    /// Pin to a site.
    #[arg(long)]
    site: Option<String>,
    /// Allowed jurisdiction (repeatable).
    #[arg(long)]
    residency: Vec<String>,
    /// Priority.
    #[arg(long)]
    priority: Option<i32>,
    /// Start as soon as there is room: do not wait for cheaper or greener power.
    #[arg(long)]
    no_delay: bool,
    /// Idempotency key: a retried submit with the same key returns the same job.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Read the job from a file, TOML (`.toml`) or JSON, with the API's fields
    /// (flags given as well override it).
    #[arg(long, short = 'f')]
    file: Option<std::path::PathBuf>,
    /// Print the job document.
    #[arg(long)]
    json: bool,
    /// The command to run.
    #[arg(last = true)]
    command: Vec<String>,
}

fn parse_data(text: &str) -> anyhow::Result<Value> {
    let (size, place) = text
        .split_once('@')
        .context("--data must be SIZE@PLACE, e.g. 500GiB@chongqing")?;
    let lower = size.to_ascii_lowercase();
    let (number, scale) = if let Some(n) = lower.strip_suffix("tib") {
        (n, 1024.0)
    } else if let Some(n) = lower.strip_suffix("gib") {
        (n, 1.0)
    } else if let Some(n) = lower.strip_suffix("gb") {
        (n, 1e9 / 1_073_741_824.0)
    } else {
        (lower.as_str(), 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("--data size {size:?} is not a number"))?;
    Ok(json!({"size_gib": value * scale, "location": place}))
}

/// A job file: TOML when it ends in `.toml`, else JSON; the same fields as the
/// API's job document.
fn read_job_file(path: &std::path::Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "toml") {
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("{}: not a TOML job", path.display()))?;
        return Ok(serde_json::to_value(table)?);
    }
    serde_json::from_str(&text).with_context(|| format!("{}: not a JSON job", path.display()))
}

/// `MS@REGION`: the most round-trip latency allowed from a region.
fn parse_latency(text: &str) -> anyhow::Result<Value> {
    let (ms, region) = text
        .split_once('@')
        .context("--latency must be MS@REGION, e.g. 30@chongqing")?;
    let ms: f64 = ms
        .trim()
        .trim_end_matches("ms")
        .parse()
        .with_context(|| format!("--latency {ms:?} is not a number of milliseconds"))?;
    Ok(json!({"region": region, "max_ms": ms}))
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let mut job: Value = match &args.file {
        Some(path) => read_job_file(path)?,
        None => json!({}),
    };
    let obj = job
        .as_object_mut()
        .context("the job file must hold a JSON object")?;
    let mut demand = obj
        .remove("demand")
        .and_then(|d| d.as_array().cloned())
        .unwrap_or_default();
    if let Some(n) = args.cpus {
        demand.push(json!({"class": "cpu", "count": n}));
    }
    if let Some(n) = args.mem {
        demand.push(json!({"class": "mem_gib", "count": n}));
    }
    if let (Some(n), Some(model)) = (args.gpus, &args.gpu_model) {
        demand.push(json!({"class": model, "count": n}));
    }
    if demand.is_empty() {
        bail!("say what the job needs: --cpus, --mem, --gpus with --gpu-model, or -f job.json");
    }
    obj.insert("demand".into(), Value::Array(demand));
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            obj.insert(key.into(), v);
        }
    };
    // Sent as seconds: parsed here, a mistake names the flag before any request.
    set("duration", args.duration.map(|d| Value::from(d.0)));
    set("deadline", args.deadline.map(|d| Value::from(d.0)));
    set("data", args.data.as_deref().map(parse_data).transpose()?);
    set("origin", args.origin.clone().map(Value::from));
    set(
        "latency_target",
        args.latency.as_deref().map(parse_latency).transpose()?,
    );
    set("site", args.site.clone().map(Value::from));
    set("priority", args.priority.map(Value::from));
    if args.no_delay {
        set("delayable", Some(Value::Bool(false)));
    }
    if !args.residency.is_empty() {
        set("residency", Some(json!(args.residency)));
    }
    if !args.command.is_empty() {
        set("command", Some(json!(args.command)));
    }
    if !obj.contains_key("duration") {
        bail!("--duration is required (e.g. --duration 2h)");
    }
    let doc = runtime()?.block_on(
        args.remote
            .client()
            .submit(&job, args.idempotency_key.as_deref()),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("{}", doc["id"]);
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(flatten)]
    remote: Remote,
    /// Only this state.
    #[arg(long)]
    state: Option<String>,
    /// Only this site.
    #[arg(long)]
    site: Option<String>,
    /// Page size.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Start after this job id (the previous page's last).
    #[arg(long)]
    after: Option<i64>,
    /// Print the page as JSON.
    #[arg(long)]
    json: bool,
}

fn job_row(j: &Value) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let demand = j["spec"]["demand"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|x| format!("{} {}", x["count"], text(&x["class"])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    vec![
        text(&j["id"]),
        text(&j["state"]),
        text(&j["site"]),
        demand,
        text(&j["spec"]["duration"]),
        text(&j["exit_code"]),
    ]
}

pub fn jobs(args: JobsArgs) -> anyhow::Result<()> {
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(s) = &args.state {
        query.push(("state", s.clone()));
    }
    if let Some(s) = &args.site {
        query.push(("site", s.clone()));
    }
    if let Some(a) = args.after {
        query.push(("after", a.to_string()));
    }
    let page = runtime()?.block_on(args.remote.client().jobs(&query))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    let mut rows = vec![
        ["id", "state", "site", "demand", "duration s", "exit"]
            .map(String::from)
            .to_vec(),
    ];
    rows.extend(page["jobs"].as_array().into_iter().flatten().map(job_row));
    print!("{}", table(&rows));
    if let Some(next) = page["next"].as_i64() {
        println!("more: --after {next}");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(flatten)]
    remote: Remote,
    /// Job id.
    id: i64,
    /// Print the document as JSON.
    #[arg(long)]
    json: bool,
}

pub fn job(args: JobArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client().job(args.id))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        let mut rows = vec![
            ["id", "state", "site", "demand", "duration s", "exit"]
                .map(String::from)
                .to_vec(),
        ];
        rows.push(job_row(&doc));
        print!("{}", table(&rows));
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    remote: Remote,
    /// Job id.
    id: i64,
    /// Print the document as JSON.
    #[arg(long)]
    json: bool,
    /// Keep printing new output until the job ends.
    #[arg(long, short = 'f')]
    follow: bool,
}

/// `suanwang logs ID`: the tail of the job's output, as its agent last sent it.
pub fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let client = args.remote.client();
    runtime()?.block_on(async {
        let mut shown = String::new();
        loop {
            let doc = client.logs(args.id).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(());
            }
            let tail = doc["tail"].as_str().unwrap_or_default();
            // Print what is new since the last look (the tail may have moved on).
            let new = match tail.find(shown.as_str()) {
                Some(at) if !shown.is_empty() => &tail[at + shown.len()..],
                _ => tail,
            };
            print!("{new}");
            shown = tail.to_string();
            if !args.follow || doc["complete"] == true {
                if tail.is_empty() && !args.follow {
                    eprintln!("(no output yet for job {})", args.id);
                }
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    })
}

pub fn cancel(args: JobArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client().cancel(args.id))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("job {} {}", doc["id"], doc["state"].as_str().unwrap_or("?"));
    }
    Ok(())
}

pub fn explain(args: JobArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client().explain(args.id))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "job {}: {}",
        doc["job"]["id"],
        doc["job"]["state"].as_str().unwrap_or("?")
    );
    for d in doc["decisions"].as_array().into_iter().flatten() {
        match d["explanation"].as_object() {
            Some(_) => {
                let e = &d["explanation"];
                let mut rows = vec![
                    [
                        "",
                        "site",
                        "start h",
                        "score",
                        "compute",
                        "energy",
                        "carbon kg",
                        "transfer",
                        "wait h",
                    ]
                    .map(String::from)
                    .to_vec(),
                ];
                let row = |mark: &str, c: &Value| {
                    let num = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.3}"));
                    vec![
                        mark.to_string(),
                        c["site"].as_str().unwrap_or("?").to_string(),
                        num(&c["start_h"]),
                        num(&c["score"]),
                        num(&c["compute_cny"]),
                        num(&c["energy_cny"]),
                        num(&c["carbon_kg"]),
                        num(&c["transfer_cny"]),
                        num(&c["wait_h"]),
                    ]
                };
                rows.push(row("chosen", &e["chosen"]));
                for a in e["alternatives"].as_array().into_iter().flatten() {
                    rows.push(row(
                        if a["guard_rejected"] == true {
                            "guard-refused"
                        } else {
                            "not chosen"
                        },
                        a,
                    ));
                }
                print!("{}", table(&rows));
            }
            None => {
                let outcome = d["outcome"].as_str().unwrap_or("?");
                let what = d["reason"]
                    .as_str()
                    .or(d["message"].as_str())
                    .map_or_else(|| d["reason"].to_string(), str::to_string);
                match outcome {
                    "report" => println!(
                        "report: {} at {} (agent {}): {what}",
                        d["state"].as_str().unwrap_or("?"),
                        d["site"].as_str().unwrap_or("?"),
                        d["agent"].as_str().unwrap_or("?")
                    ),
                    _ => println!("{outcome}: {what}"),
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct SitesArgs {
    #[command(flatten)]
    remote: Remote,
    /// Print the sites as JSON.
    #[arg(long)]
    json: bool,
}

pub fn sites(args: SitesArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client().sites())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let mut rows = vec![
        ["id", "name", "jurisdiction", "PUE", "capacity"]
            .map(String::from)
            .to_vec(),
    ];
    for s in doc.as_array().into_iter().flatten() {
        let site = &s["site"];
        let capacity = site["capacity"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        rows.push(vec![
            s["id"].as_str().unwrap_or("?").to_string(),
            site["name"].as_str().unwrap_or("").to_string(),
            site["jurisdiction"].as_str().unwrap_or("").to_string(),
            site["pue"].to_string(),
            capacity,
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    #[command(flatten)]
    remote: Remote,
    /// Site id.
    site: String,
    /// Why (drain only), shown to other operators.
    #[arg(long, default_value = "")]
    reason: String,
    /// Print the site document as JSON.
    #[arg(long)]
    json: bool,
}

/// `suanwang drain SITE` / `undrain SITE` (operator token).
pub fn drain(args: DrainArgs, drain: bool) -> anyhow::Result<()> {
    let reason = drain.then_some(args.reason.as_str());
    let doc = runtime()?.block_on(args.remote.client().drain(&args.site, reason))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if doc["drained"].is_null() {
        println!("site {} takes work", args.site);
    } else {
        println!(
            "site {} drained: no new work; placed jobs go elsewhere",
            args.site
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    remote: Remote,
    /// Print the agents as JSON.
    #[arg(long)]
    json: bool,
}

/// `suanwang agents` (operator token): every agent, live or not.
pub fn agents(args: AgentsArgs) -> anyhow::Result<()> {
    let doc = runtime()?.block_on(args.remote.client().agents())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let mut rows = vec![
        [
            "agent",
            "site",
            "live",
            "executor",
            "host",
            "last seen",
            "running",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for a in doc.as_array().into_iter().flatten() {
        let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
        rows.push(vec![
            text(&a["id"]),
            text(&a["site"]),
            if a["live"] == true { "yes" } else { "no" }.to_string(),
            text(&a["info"]["executor"]),
            text(&a["info"]["hostname"]),
            a["last_seen"].to_string(),
            a["telemetry"]["running_jobs"]
                .as_u64()
                .map_or("-".into(), |n| n.to_string()),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}
