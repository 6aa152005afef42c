//! The commands of many processes, one plan: `run --plan --stage --shard`, `status`,
//! `finalize` and `submit-slurm`. The work is the library's (`rechunker::plan_file`); this
//! module parses their arguments, finds the shard a scheduler gives, and prints.

use crate::api::Progress;
use crate::plan_file::{PlanFile, Status};
use anyhow::{bail, Context, Result};
use clap::Args;
use rechunker_core::executor::Shard;
use rechunker_core::units::format_bytes;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// `rechunk run --plan FILE --stage S --shard i/n`.
#[derive(Args, Clone, Default)]
pub struct StageArgs {
    /// Run one stage of this plan file (written by `rechunk plan ... -o FILE`) instead of SRC DST.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The stage to run (0-based), with --plan.
    #[arg(long)]
    pub stage: Option<usize>,
    /// This process's share of the stage: INDEX/COUNT (0-based), or `auto` to read it from
    /// SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, JOB_COMPLETION_INDEX (with --shard-count),
    /// or AWS_BATCH_JOB_ARRAY_INDEX/AWS_BATCH_JOB_ARRAY_SIZE.
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Number of shards, for `--shard auto` with a scheduler that gives only the index.
    #[arg(long)]
    pub shard_count: Option<u64>,
}

/// The shard `spec` names, reading the scheduler's environment for `auto`.
fn resolve_shard(
    spec: &str,
    shards: Option<u64>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Shard> {
    if spec != "auto" {
        return spec.parse().map_err(|e: String| anyhow::anyhow!(e));
    }
    let number = |name: &str| -> Result<Option<u64>> {
        env(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .with_context(|| format!("{name}={v} is not a number"))
            })
            .transpose()
    };
    let (index, count) = if let Some(i) = number("SLURM_ARRAY_TASK_ID")? {
        // The task id is the shard index (submit-slurm uses --array=0-(n-1); resubmitting
        // --array=2 must still run shard 2), so the count must come from --shard-count when
        // only some indices are submitted.
        let count = match (shards, number("SLURM_ARRAY_TASK_COUNT")?) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => bail!("SLURM_ARRAY_TASK_COUNT is not set; pass --shard-count N"),
        };
        (i, count)
    } else if let Some(i) = number("JOB_COMPLETION_INDEX")? {
        let Some(n) = shards else {
            bail!("JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) gives no count; pass --shard-count N (the Job's completions)")
        };
        (i, n)
    } else if let Some(i) = number("AWS_BATCH_JOB_ARRAY_INDEX")? {
        match (number("AWS_BATCH_JOB_ARRAY_SIZE")?, shards) {
            (_, Some(n)) | (Some(n), None) => (i, n),
            (None, None) => bail!("AWS_BATCH_JOB_ARRAY_SIZE is not set; pass --shard-count N"),
        }
    } else {
        bail!("--shard auto found no array index (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX); pass --shard INDEX/COUNT")
    };
    format!("{index}/{count}")
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))
}

/// Runs one shard of one stage of a plan file.
pub fn run_stage(plan_file: &Path, args: &StageArgs, progress: Arc<dyn Progress>) -> Result<()> {
    let file = PlanFile::load(plan_file)?;
    let Some(stage) = args.stage else {
        bail!(
            "--plan needs --stage S (0 to {})",
            file.plan.num_stages().saturating_sub(1)
        );
    };
    let shard = resolve_shard(&args.shard, args.shard_count, &|k| std::env::var(k).ok())?;
    let report = file.run_stage(stage, shard, progress)?;
    println!("{}", report.summary());
    Ok(())
}

#[derive(Args)]
pub struct StatusArgs {
    /// The plan file.
    #[arg(long)]
    plan: PathBuf,
}

/// Prints each stage's progress from the journal; lists missing tasks of incomplete stages.
pub fn status(a: StatusArgs) -> Result<()> {
    let file = PlanFile::load(&a.plan)?;
    let stages = match file.status()? {
        Status::Finalized => {
            println!(
                "{} -> {}: finalized (the scratch is gone and the target exists)",
                file.plan.source, file.plan.target
            );
            return Ok(());
        }
        Status::Running(stages) => stages,
    };
    println!(
        "{} -> {} ({} stages)",
        file.plan.source,
        file.plan.target,
        file.plan.num_stages()
    );
    let mut complete = true;
    for (stage, arrays) in stages.iter().enumerate() {
        for st in arrays {
            let mark = if st.complete() {
                "complete"
            } else {
                "incomplete"
            };
            complete &= st.complete();
            println!(
                "  stage {stage} `{}`: {}/{} tasks done, {mark}",
                st.array, st.done, st.tasks
            );
            if !st.complete() {
                println!(
                    "    missing tasks (first {}): {:?}",
                    st.missing.len(),
                    st.missing
                );
            }
        }
    }
    println!(
        "{}",
        if complete {
            "all stages complete: run `rechunk finalize --plan ...`"
        } else {
            "not complete"
        }
    );
    Ok(())
}

#[derive(Args)]
pub struct FinalizeArgs {
    /// The plan file.
    #[arg(long)]
    plan: PathBuf,
}

pub fn finalize(a: FinalizeArgs) -> Result<()> {
    let file = PlanFile::load(&a.plan)?;
    file.finalize()?;
    println!(
        "finalized {} ({} arrays); scratch {} removed",
        file.plan.target,
        file.plan.arrays.len(),
        file.scratch
    );
    Ok(())
}

#[derive(Args)]
pub struct SubmitSlurmArgs {
    /// The plan file.
    #[arg(long)]
    plan: PathBuf,
    /// Array tasks per stage.
    #[arg(long)]
    shards: u64,
    /// Where the jobs' logs go (default: beside the plan file).
    #[arg(long)]
    logs: Option<PathBuf>,
    /// Print the sbatch commands instead of running them.
    #[arg(long)]
    dry_run: bool,
    /// More sbatch options, after `--` (e.g. -- --partition=big --time=2:00:00).
    #[arg(last = true)]
    sbatch: Vec<String>,
}

/// Submits every stage as a job array of `--shards` tasks, each depending (afterok) on the one
/// before, and a finalize job after the last. Each worker still checks the journal before it
/// starts: the scheduler's word is not the barrier.
pub fn submit_slurm(a: SubmitSlurmArgs) -> Result<()> {
    let file = PlanFile::load(&a.plan)?;
    if a.shards == 0 {
        bail!("--shards must be at least 1");
    }
    let plan_path = std::fs::canonicalize(&a.plan)
        .with_context(|| format!("cannot resolve {}", a.plan.display()))?;
    let exe = std::env::current_exe().context("cannot find the rechunk binary")?;
    let logs = a.logs.clone().unwrap_or_else(|| {
        plan_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    });
    let mem_mb = file.plan.max_mem.div_ceil(1 << 20);
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let mut previous: Option<String> = None;
    let mut submit = |name: String, array: Option<u64>, wrap: String| -> Result<String> {
        let mut cmd = Command::new("sbatch");
        cmd.arg("--parsable")
            .arg(format!("--job-name={name}"))
            .arg(format!("--mem={mem_mb}M"))
            .arg(format!("--cpus-per-task={}", file.plan.threads))
            .arg(format!(
                "--output={}",
                logs.join(format!("{name}-%A_%a.log")).display()
            ));
        if let Some(n) = array {
            cmd.arg(format!("--array=0-{}", n - 1));
        }
        if let Some(dep) = &previous {
            cmd.arg(format!("--dependency=afterok:{dep}"));
        }
        cmd.args(&a.sbatch).arg(format!("--wrap={wrap}"));
        if a.dry_run {
            println!("{cmd:?}");
            let id = format!("<{name}>");
            previous = Some(id.clone());
            return Ok(id);
        }
        let out = cmd
            .output()
            .context("cannot run sbatch; is SLURM installed and on the PATH?")?;
        if !out.status.success() {
            bail!(
                "sbatch for {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let id = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        previous = Some(id.clone());
        Ok(id)
    };
    let mut ids = Vec::new();
    for stage in 0..file.plan.num_stages() {
        let wrap = format!(
            "{} run --plan {} --stage {stage} --shard auto --shard-count {} -q",
            quote(&exe),
            quote(&plan_path),
            a.shards
        );
        ids.push(submit(
            format!("rechunk-stage{stage}"),
            Some(a.shards),
            wrap,
        )?);
    }
    let wrap = format!("{} finalize --plan {}", quote(&exe), quote(&plan_path));
    ids.push(submit("rechunk-finalize".into(), None, wrap)?);
    println!(
        "submitted {} stage arrays of {} tasks ({} per task, {} threads) and a finalize job: {}",
        file.plan.num_stages(),
        a.shards,
        format_bytes(file.plan.max_mem),
        file.plan.threads,
        ids.join(" ")
    );
    println!("watch with `rechunk status --plan {}`", plan_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shards_from_schedulers() {
        let s = |spec, shards, vars: &[(&str, &str)]| resolve_shard(spec, shards, &env(vars));
        assert_eq!(s("2/5", None, &[]).unwrap(), Shard { index: 2, count: 5 });
        assert!(s("5/5", None, &[]).is_err());
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
        ];
        assert_eq!(
            s("auto", None, &slurm).unwrap(),
            Shard { index: 3, count: 4 }
        );
        assert_eq!(
            s("auto", Some(8), &[("JOB_COMPLETION_INDEX", "7")]).unwrap(),
            Shard { index: 7, count: 8 }
        );
        assert!(s("auto", None, &[("JOB_COMPLETION_INDEX", "7")])
            .unwrap_err()
            .to_string()
            .contains("--shard-count"));
        let batch = [
            ("AWS_BATCH_JOB_ARRAY_INDEX", "0"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "2"),
        ];
        assert_eq!(
            s("auto", None, &batch).unwrap(),
            Shard { index: 0, count: 2 }
        );
        assert!(s("auto", None, &[]).is_err());
    }
}
