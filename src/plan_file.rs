//! Many processes, one plan: a plan file that workers run stage by stage and shard by shard,
//! then finalize. The journal in the shared scratch store is the only coordination: a stage
//! starts only when the journal shows the previous ones complete, and a task finished by any
//! process is never redone.

use crate::api::{self, open_source, Progress, Report};
use crate::formats::{self, TargetFormat, WriteOptions};
use anyhow::{bail, Context, Result};
use rechunker_core::executor::Shard;
use rechunker_core::job::{self, DatasetPlan, StageStatus};
use rechunker_core::scratch::{ScratchCodec, ScratchIo};
use rechunker_core::VariableSelection;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A self-contained plan file: the plan plus everything a worker needs to run a piece of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanFile {
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
    /// Where the file is (for messages).
    #[serde(skip)]
    pub path: PathBuf,
}

/// Where a plan file's run stands.
#[derive(Clone, Debug)]
pub enum Status {
    /// Finalized: the scratch is gone and the target exists.
    Finalized,
    /// Per stage, per array: tasks done and missing.
    Running(Vec<Vec<StageStatus>>),
}

impl PlanFile {
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

    pub fn load(path: &Path) -> Result<PlanFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the plan file {}", path.display()))?;
        DatasetPlan::from_json(&text).map_err(|e| {
            anyhow::anyhow!(
                "plan file {}: {e}; write a new plan with `rechunk plan ... -o FILE`",
                path.display()
            )
        })?;
        let mut file: PlanFile = serde_json::from_str(&text).with_context(|| {
            format!("{} is a plan without run settings; write plan files with `rechunk plan ... -o FILE`", path.display())
        })?;
        file.path = path.to_path_buf();
        // Plan files written before arrays carried their unlimited dimensions kept them in the
        // write options: move them where they are now.
        let legacy = std::mem::take(&mut file.write.legacy_unlimited_dims);
        if !legacy.is_empty() {
            for a in &mut file.plan.arrays {
                if a.target.unlimited_dims.is_empty() {
                    a.target.unlimited_dims = a
                        .target
                        .dims
                        .iter()
                        .filter(|d| legacy.contains(d))
                        .cloned()
                        .collect();
                }
            }
        }
        Ok(file)
    }

    /// Whether the run is finalized: `plan -o` recorded the plan in the scratch and finalize
    /// removed it, so no plan there and a target in place means the run is finished.
    fn finalized(&self, scratch: &dyn rechunker_core::scratch::ScratchStore) -> Result<bool> {
        Ok(scratch.get(job::PLAN_KEY)?.is_none() && formats::target_exists(&self.plan.target)?)
    }

    /// Runs `shard` of stage `stage` in this process.
    pub fn run_stage(
        &self,
        stage: usize,
        shard: Shard,
        progress: Arc<dyn Progress>,
    ) -> Result<Report> {
        let started = Instant::now();
        let plan_file = self.path.display();
        if stage >= self.plan.num_stages() {
            bail!(
                "{plan_file} has stages 0 to {}; there is no stage {stage}",
                self.plan.num_stages() - 1
            );
        }
        if shard.count > 1 && !self.target_format.driver().concurrent_writers() {
            bail!("{} is one {} file, which one process must write: run its stages with --shard 0/1, or write Zarr or TileDB to share the work", self.plan.target, self.target_format.name());
        }
        let source = open_source(
            &self.source_arg,
            self.concat_dim.as_deref(),
            self.skip_unsupported,
            &self.selection,
        )?
        .dataset;
        self.plan.check_source(source.meta()).map_err(|e| {
            anyhow::anyhow!(
                "plan file {plan_file} does not fit its source {}: {e}; write a new plan with `rechunk plan ... -o FILE`",
                self.source_arg
            )
        })?;
        let target = formats::create_target(&self.plan.target, self.target_format, &self.write)?;
        let scratch = formats::open_scratch(&self.scratch, self.scratch_io)?;
        // A late or requeued worker must not start rewriting a finished target.
        if self.finalized(scratch.as_ref())? {
            bail!(
                "{} is finalized (its scratch {} holds no plan): nothing to run; write a new plan with `rechunk plan ... -o FILE` to rechunk again",
                self.plan.target,
                self.scratch
            );
        }
        job::record_plan(&self.plan, scratch.as_ref(), true)?;
        let executor =
            api::executor(&self.plan, self.scratch_codec, scratch, progress)?.with_shard(shard);
        let run = job::run_stage(
            &self.plan,
            source.as_ref(),
            target.as_ref(),
            &executor,
            stage,
        )
        .with_context(|| {
            format!(
                "stage {stage} shard {}/{} of {plan_file} stopped; rerun it: finished tasks are skipped",
                shard.index, shard.count,
            )
        })?;
        Ok(Report::new(&self.plan, run, started))
    }

    /// Each stage's progress from the journal.
    pub fn status(&self) -> Result<Status> {
        let scratch = formats::open_scratch(&self.scratch, self.scratch_io)?;
        if self.finalized(scratch.as_ref())? {
            return Ok(Status::Finalized);
        }
        let stages = (0..self.plan.num_stages())
            .map(|stage| job::stage_status(&self.plan, scratch.as_ref(), stage))
            .collect::<rechunker_core::Result<_>>()?;
        Ok(Status::Running(stages))
    }

    /// Writes the target's final metadata and removes the scratch, once every stage is
    /// complete.
    pub fn finalize(&self) -> Result<()> {
        let target = formats::create_target(&self.plan.target, self.target_format, &self.write)?;
        let scratch = formats::open_scratch(&self.scratch, self.scratch_io)?;
        job::finalize(&self.plan, target.as_ref(), scratch.as_ref())?;
        Ok(())
    }
}
