//! Many processes, one plan: `rechunk plan -o`, `run --plan --stage --shard`, `status`,
//! `finalize` and `submit-slurm`. The journal in the shared scratch store is the only
//! coordination: a stage starts only when the journal shows the previous ones complete, and a
//! task finished by any process is never redone.

use crate::{executor, formats, print_summary, progress};
use anyhow::{bail, Context, Result};
use clap::Args;
use rechunker::formats::{TargetFormat, WriteOptions};
use rechunker_core::executor::{NoProgress, Progress, Shard};
use rechunker_core::job::{self, DatasetPlan};
use rechunker_core::scratch::{ScratchCodec, ScratchIo};
use rechunker_core::units::format_bytes;
use rechunker_core::VariableSelection;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// A self-contained plan file: the plan plus everything a worker needs to run a piece of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobFile {
    #[serde(flatten)]
    pub plan: DatasetPlan,
    /// SRC as given (a path, URI or file pattern), and --concat-dim for patterns.
    pub source_arg: String,
    #[serde(default)]
    pub concat_dim: Option<String>,
    /// Variables of unsupported types were left out (`--skip-unsupported`).
    #[serde(default)]
    pub skip_unsupported: bool,
    /// The variables copied (`--variables`, `--drop-variables`).
    #[serde(default, skip_serializing_if = "VariableSelection::is_all")]
    pub selection: VariableSelection,
    pub target_format: TargetFormat,
    pub write: WriteOptions,
    pub scratch: String,
    pub scratch_codec: ScratchCodec,
    /// How workers move large pieces in a local scratch directory.
    #[serde(default)]
    pub scratch_io: ScratchIo,
}

impl JobFile {
    /// Writes the plan file, records the plan in the scratch store and creates the target's
    /// arrays, so that workers only fill them.
    pub fn create(&self, path: &Path) -> Result<()> {
        // Replace an older plan file, never a file of the user's.
        let is_plan =
            std::fs::read_to_string(path).is_ok_and(|text| DatasetPlan::from_json(&text).is_ok());
        if std::fs::symlink_metadata(path).is_ok() && !is_plan {
            bail!(
                "{} exists and is not a rechunk plan file; choose another name for -o",
                path.display()
            );
        }
        let target = formats::create_target(&self.plan.target, self.target_format, &self.write)?;
        if formats::target_exists(&self.plan.target)? {
            bail!(
                "target {} exists; remove it first (a plan file starts a new run)",
                self.plan.target
            );
        }
        let scratch = formats::open_scratch(&self.scratch, self.scratch_io)?;
        job::record_plan(&self.plan, scratch.as_ref(), false)?;
        for a in &self.plan.arrays {
            target.create_array(&a.target)?;
        }
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the plan to {}", path.display()))
    }

    pub fn load(path: &Path) -> Result<JobFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the plan file {}", path.display()))?;
        DatasetPlan::from_json(&text).map_err(|e| {
            anyhow::anyhow!(
                "plan file {}: {e}; write a new plan with `rechunk plan ... -o FILE`",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| {
            format!("{} is a plan without run settings; write plan files with `rechunk plan ... -o FILE`", path.display())
        })
    }
}

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
pub fn run_stage(plan_file: &Path, args: &StageArgs, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let file = JobFile::load(plan_file)?;
    let Some(stage) = args.stage else {
        bail!(
            "--plan needs --stage S (0 to {})",
            file.plan.num_stages().saturating_sub(1)
        );
    };
    if stage >= file.plan.num_stages() {
        bail!(
            "{} has stages 0 to {}; there is no stage {stage}",
            plan_file.display(),
            file.plan.num_stages() - 1
        );
    }
    let shard = resolve_shard(&args.shard, args.shard_count, &|k| std::env::var(k).ok())?;
    if shard.count > 1
        && matches!(
            file.target_format,
            TargetFormat::Netcdf | TargetFormat::Hdf5
        )
    {
        bail!("{} is one NetCDF/HDF5 file, which one process must write: run its stages with --shard 0/1, or write Zarr or TileDB to share the work", file.plan.target);
    }
    let source = crate::select_source(
        formats::open_source(
            &file.source_arg,
            file.concat_dim.as_deref(),
            file.skip_unsupported,
        )?,
        &file.selection,
    )?
    .dataset;
    file.plan.check_source(source.meta()).map_err(|e| {
        anyhow::anyhow!(
            "plan file {} does not fit its source {}: {e}; write a new plan with `rechunk plan ... -o FILE`",
            plan_file.display(),
            file.source_arg
        )
    })?;
    let target = formats::create_target(&file.plan.target, file.target_format, &file.write)?;
    let scratch = formats::open_scratch(&file.scratch, file.scratch_io)?;
    // `plan -o` recorded the plan in the scratch and finalize removed it: no plan there and a
    // target in place means the run is finished, and a late or requeued worker must not start
    // rewriting it.
    if scratch.get(job::PLAN_KEY)?.is_none() && formats::target_exists(&file.plan.target)? {
        bail!(
            "{} is finalized (its scratch {} holds no plan): nothing to run; write a new plan with `rechunk plan ... -o FILE` to rechunk again",
            file.plan.target,
            file.scratch
        );
    }
    job::record_plan(&file.plan, scratch.as_ref(), true)?;
    let progress: Arc<dyn Progress> = if quiet {
        Arc::new(NoProgress)
    } else {
        Arc::new(progress::CliProgress::new())
    };
    let executor = executor(&file.plan, file.scratch_codec, scratch, progress)?.with_shard(shard);
    let report = job::run_stage(
        &file.plan,
        source.as_ref(),
        target.as_ref(),
        &executor,
        stage,
    )
    .with_context(|| {
        format!(
            "stage {stage} shard {}/{} of {} stopped; rerun it: finished tasks are skipped",
            shard.index,
            shard.count,
            plan_file.display()
        )
    })?;
    print_summary(&file.plan, &report, started);
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
    let file = JobFile::load(&a.plan)?;
    let scratch = formats::open_scratch(&file.scratch, file.scratch_io)?;
    if scratch.get(job::PLAN_KEY)?.is_none() && formats::target_exists(&file.plan.target)? {
        println!(
            "{} -> {}: finalized (the scratch is gone and the target exists)",
            file.plan.source, file.plan.target
        );
        return Ok(());
    }
    println!(
        "{} -> {} ({} stages)",
        file.plan.source,
        file.plan.target,
        file.plan.num_stages()
    );
    let mut complete = true;
    for stage in 0..file.plan.num_stages() {
        for st in job::stage_status(&file.plan, scratch.as_ref(), stage)? {
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
    let file = JobFile::load(&a.plan)?;
    let target = formats::create_target(&file.plan.target, file.target_format, &file.write)?;
    let scratch = formats::open_scratch(&file.scratch, file.scratch_io)?;
    job::finalize(&file.plan, target.as_ref(), scratch.as_ref())?;
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
    let file = JobFile::load(&a.plan)?;
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
