"""The wheel is self-contained: installed into a fresh venv it imports and runs
`rechunk --help`, and every shared library its extension needs is inside the wheel or allowed
by the manylinux policy. Run with RECHUNKER_WHEEL set to the repaired wheel: by `cargo xtask
test` on the debug test wheel (before the pytest suite runs on that same wheel), and by `cargo
xtask wheel` on the release wheel."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

# Always there: the dynamic loader and the kernel's vDSO.
LOADER = {"ld-linux-x86-64.so.2", "linux-vdso.so.1"}


def policy_libraries(wheel: str) -> set[str]:
    """The system libraries the manylinux policy of the wheel's tag allows (auditwheel's own
    policy file: libc, libm, libpthread, libdl, librt, libgcc_s, libstdc++, libz, libresolv, ...)."""
    import auditwheel

    tag = re.search(r"(manylinux_\d+_\d+)_x86_64", Path(wheel).name)
    assert tag, f"{wheel} has no manylinux_X_Y tag"
    policies = json.loads((Path(auditwheel.__file__).parent / "policy/manylinux-policy.json").read_text())
    (policy,) = [p for p in policies if p["name"] == tag.group(1)]
    return set(policy["lib_whitelist"]) | LOADER


def test_the_repaired_wheel_works_in_a_fresh_venv_with_bundled_libraries(tmp_path):
    wheel = os.environ.get("RECHUNKER_WHEEL")
    assert wheel, "set RECHUNKER_WHEEL to the wheel to check (cargo xtask wheel does)"
    assert "manylinux" in Path(wheel).name, f"{wheel} is not a repaired manylinux wheel"
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", wheel], check=True)
    # No LD_LIBRARY_PATH and no project paths: only what the wheel brings.
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH")}
    subprocess.run([python, "-c", "import rechunker_rs; print(rechunker_rs.rechunk)"], check=True, env=clean)
    out = subprocess.run([env_dir / "bin" / "rechunk", "--help"], capture_output=True, text=True, env=clean)
    assert out.returncode == 0 and "Usage: rechunk" in out.stdout, out.stderr

    site = next((env_dir / "lib").glob("python3*/site-packages"))
    (ext,) = (site / "rechunker_rs").glob("_native*.so")
    libs_dir = site / "rechunker_rs.libs"
    assert libs_dir.is_dir(), "auditwheel bundled no libraries"
    ldd = subprocess.run(["ldd", ext], capture_output=True, text=True, env=clean, check=True).stdout
    allowed = policy_libraries(wheel)
    outside = []
    for line in ldd.splitlines():
        m = re.match(r"\s*(\S+)(?: => (\S+))?", line)
        if not m:
            continue
        name, path = m.group(1), m.group(2)
        assert path != "not", f"{name} does not resolve:\n{ldd}"
        if Path(name).name in allowed:
            continue
        if path is None or not Path(path).resolve().is_relative_to(libs_dir.resolve()):
            outside.append(line.strip())
    assert not outside, "libraries from outside the wheel and the manylinux policy:\n" + "\n".join(outside)
    bundled = {p.name.split("-")[0] for p in libs_dir.iterdir()}
    for needed in ("libnetcdf", "libhdf5_serial", "libtiledb", "libisal"):
        assert any(b.startswith(needed) for b in bundled), f"{needed} not bundled: {sorted(bundled)}"


if __name__ == "__main__":
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", __file__]))
