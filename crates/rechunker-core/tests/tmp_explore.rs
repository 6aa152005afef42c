use rechunker_core::grid::ChunkGrid;
use rechunker_core::planner::{self, CostModel, PlanRequest};
#[test]
fn explore() {
    let shape = [1u64, 24, 25, 9];
    let mut req = PlanRequest {
        item_size: 2,
        source_read_overhead: 0,
        target_write_overhead: 0,
        source: ChunkGrid::regular(&shape, &[1, 24, 1, 3]),
        target: ChunkGrid::regular(&shape, &[1, 1, 25, 9]),
        task_budget: 0,
        min_io: 14364211662872155339 % 4096,
        parallelism: 3,
        cost: CostModel {
            seconds_per_op: 0.005,
            ..CostModel::default()
        },
    };
    let min = planner::minimum_task_budget(&req);
    req.task_budget = min + 3103939325336007058 % 256;
    let p = planner::plan(&req).unwrap();
    println!("min {min} budget {} minio {}", req.task_budget, req.min_io);
    for s in p.summary() {
        println!("{s:?}");
    }
    println!("cost {}", p.cost(&req.cost));
    let two = planner::plan(&PlanRequest {
        min_io: 0,
        ..req.clone()
    })
    .unwrap();
    for s in two.summary() {
        println!("two {s:?}");
    }
    println!("cost {}", two.cost(&req.cost));
}
