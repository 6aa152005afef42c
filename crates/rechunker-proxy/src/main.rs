//! `rechunker-proxy UPSTREAM [LATENCY_MS]`: the fault proxy as a process, for benchmarks and
//! manual runs. Prints its endpoint on the first line of stdout, serves until stdin closes,
//! then prints `requests bytes_up bytes_down` and exits.

use std::io::{BufRead, Write};
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(upstream) = args.next() else {
        eprintln!("usage: rechunker-proxy UPSTREAM [LATENCY_MS]");
        std::process::exit(2);
    };
    let latency: u64 = args.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    let proxy = rechunker_proxy::Proxy::start(&upstream)?;
    proxy.set_latency(Duration::from_millis(latency));
    let mut out = std::io::stdout();
    writeln!(out, "{}", proxy.endpoint())?;
    out.flush()?;
    // Each line read prints the counters so far and resets them; EOF ends.
    for line in std::io::stdin().lock().lines() {
        let _ = line?;
        let s = proxy.stats();
        writeln!(out, "{} {} {}", s.requests, s.bytes_up, s.bytes_down)?;
        out.flush()?;
        proxy.reset_stats();
    }
    Ok(())
}
