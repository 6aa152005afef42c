//! Byte sizes as people write them (`2GiB`, `512MB`, `1.5G`) and as we print them.

/// Parses a size: a number with an optional unit. `K`/`M`/`G`/`T` and `KiB`.. are powers of
/// 1024, `KB`/`MB`/.. powers of 1000, and a bare number is bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write it like 2GiB, 512MB or 1048576"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
            "`{text}` has an unknown unit `{other}`; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
        ))
        }
    };
    let bytes = (value * factor as f64).round();
    // 2^64 is exact as an f64; anything from there on would saturate to u64::MAX.
    if !bytes.is_finite() || bytes >= 18_446_744_073_709_551_616.0 {
        return Err(format!(
            "`{text}` is more than 16 EiB, the largest size rechunk counts; did you mean a smaller unit?"
        ));
    }
    Ok(bytes as u64)
}

/// Formats a byte count with a binary unit, e.g. `1.50 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// Formats a duration in seconds as `1h02m`, `3m05s` or `4.2s`.
pub fn format_seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    } else if s >= 60.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("512MB").unwrap(), 512_000_000);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert_eq!(parse_size("16777215TiB").unwrap(), 16777215 << 40);
        for huge in [
            "16777216TiB",
            "100000000TiB",
            "18446744073709551616",
            "1e400",
        ] {
            let e = parse_size(huge).unwrap_err();
            assert!(
                e.contains("16 EiB") || e.contains("unknown unit"),
                "{huge}: {e}"
            );
        }
        assert!(parse_size("100000000TiB")
            .unwrap_err()
            .contains("more than 16 EiB"));
        assert_eq!(format_bytes(1536 << 20), "1.50 GiB");
        assert_eq!(format_bytes(12), "12 B");
    }
}
