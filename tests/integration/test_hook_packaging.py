"""bm-hook packaging: systemd unit, Windows service installer, PyInstaller onedir spec, docs.

There is no PowerShell on Linux CI: install.ps1 is checked statically, and what can be run
is run here through Python (its regexes through ``re``, its argument quoting through a
CommandLineToArgvW parser, its TOML values through ``tomllib``)."""

import ast
import configparser
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from boot_hooks.config import Deadlines
from boot_hooks.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "bm-hook.service"
INSTALLER = ROOT / "packaging" / "windows" / "install.ps1"
SPEC = ROOT / "packaging" / "windows" / "bm-hook.spec"
DOC = ROOT / "docs" / "hook.md"


def unit():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNIT)
    return parser


def test_unit_runs_the_resident_hook_after_network_online():
    # Issue 12: the hook retries the rotation itself and stays resident (was Type=oneshot,
    # one run per start, retried by systemd's Restart=).
    parsed = unit()
    assert parsed["Unit"]["After"] == "network-online.target"
    assert parsed["Unit"]["Wants"] == "network-online.target"
    assert parsed["Service"]["Type"] == "exec"
    assert "RemainAfterExit" not in parsed["Service"]
    assert parsed["Service"]["ExecStart"].endswith(
        "bm-hook --resident --config /etc/bm-hook/hook.toml")
    assert parsed["Install"]["WantedBy"] == "multi-user.target"


def test_unit_restarts_crashes_but_not_a_config_that_does_not_load():
    # Issue 12: only exit 2 ends the process for good; auth refused (5) is retried inside
    # the resident loop now (staff may fix the key or IP), so it no longer exits with 5.
    service = unit()["Service"]
    assert service["Restart"] == "on-failure"
    assert set(service["RestartPreventExitStatus"].split()) == {str(int(ExitCode.CONFIG))}


def test_unit_gives_the_state_dir_and_stops_within_its_timeout():
    from boot_hooks.resident import STOP_GRACE_S

    service = unit()["Service"]
    assert service["StateDirectory"] == "bm-hook" and service["StateDirectoryMode"] == "0700"
    assert service["Environment"] == "BM_HOOK_STATE_DIR=/var/lib/bm-hook"
    # A stop abandons a running attempt after STOP_GRACE_S; systemd waits longer than that.
    assert int(service["TimeoutStopSec"]) > STOP_GRACE_S
    # Type=exec: a start timeout would not bound the retries anyway; none is set.
    assert "TimeoutStartSec" not in service


def test_unit_keeps_its_hardening():
    service = unit()["Service"]
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["UMask"] == "0077" and service["PrivateTmp"] == "yes"
    assert "AF_UNIX" in service["RestrictAddressFamilies"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    # verify checks that ExecStart exists; point it at a binary that does.
    copy = tmp_path / "bm-hook.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/bm-hook", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- Windows: install.ps1 (read as text; there is no PowerShell here) ------------------------


def ps_text() -> str:
    return INSTALLER.read_text(encoding="utf-8")


def ps_literal(source: str) -> str:
    """The value of a PowerShell single-quoted string body ('' is one quote)."""
    return source.replace("''", "'")


def ps_variable(name: str) -> str:
    match = re.search(rf"^\${name} = '((?:[^']|'')*)'$", ps_text(), re.M)
    assert match, name
    return ps_literal(match.group(1))


def ps_hashtable(name: str) -> dict[str, str]:
    block = ps_text().split(f"${name} = @{{\n", 1)[1].split("\n}\n", 1)[0]
    return {key.strip("'"): ps_literal(value) for key, value in
            re.findall(r"^\s*('?\w*'?)\s*=\s*'((?:[^']|'')*)'$", block, re.M)}


def ps_function(name: str) -> str:
    match = re.search(rf"^function {name}\b.*?^}}$", ps_text(), re.M | re.S)
    assert match, name
    return match.group(0)


def sc_calls() -> list[list[str]]:
    """Every Invoke-Sc argument array, '...' literals resolved, variables kept as $name."""
    calls = []
    for inner in re.findall(r"Invoke-Sc @\((.*?)\)(?: -Accept| \|)", ps_text()):
        calls.append([ps_literal(a[1:-1]) if a.startswith("'") else a
                      for a in re.findall(r"'(?:[^']|'')*'|\$\w+", inner)])
    return calls


def test_service_is_created_by_sc_exe_as_the_plan_says():
    assert ps_variable("ServiceName") == "bm-hook"
    assert ps_variable("DisplayName") == "bm-hook (DeepLink code rotation)"
    calls = {tuple(call[:2]): call for call in sc_calls()}
    create = calls[("$verb", "$ServiceName")]
    assert create[2:] == ["binPath=", "$binPath", "start=", "delayed-auto", "obj=", "LocalSystem",
                          "DisplayName=", "$DisplayName"]
    assert "$verb = if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) " \
           "{ 'config' } else { 'create' }" in ps_text()
    assert calls[("failure", "$ServiceName")][2:] == [
        "reset=", "86400", "actions=", "restart/30000/restart/60000/restart/120000"]
    assert calls[("failureflag", "$ServiceName")][2:] == ["1"]
    assert ("delete", "$ServiceName") in calls and ("start", "$ServiceName") in calls
    # ImagePath: both paths quoted, then the resident service's own arguments.
    assert "$binPath = '\"{0}\" --service --config \"{1}\"' -f $HookExe, $ConfigFile" in ps_text()
    assert "$HookExe = Join-Path $InstallDir 'bm-hook.exe'" in ps_text()
    assert "$ConfigFile = Join-Path $ConfigDir 'hook.toml'" in ps_text()


def test_every_sc_exe_exit_code_is_checked():
    body = ps_function("Invoke-Sc")
    assert "if ($Accept -notcontains $code) {" in body and "throw (" in body
    # No sc.exe call bypasses Invoke-Sc, and none of its results is thrown away unchecked.
    code_lines = [ln for ln in ps_text().splitlines()
                  if not ln.lstrip().startswith("#") and "Write-Host" not in ln]
    assert not [ln for ln in code_lines if re.search(r"(^|[&|;(]\s*)sc(\.exe)?\s", ln.strip())]
    assert len(sc_calls()) == ps_text().count("Invoke-Sc @(") == 6


def parse_windows_command_line(line: str) -> list[str]:
    """Split a command line as CommandLineToArgvW / the MSVCRT do (arguments after argv[0])."""
    args, current, i, quoted, has = [], [], 0, False, False
    while i < len(line):
        slashes = len(line[i:]) - len(line[i:].lstrip("\\"))
        if slashes:
            i += slashes
            if i < len(line) and line[i] == '"':
                current.append("\\" * (slashes // 2))
                if slashes % 2:
                    current.append('"')
                    i += 1
            else:
                current.append("\\" * slashes)
            has = True
            continue
        char = line[i]
        if char == '"':
            quoted, has = not quoted, True
        elif char in " \t" and not quoted:
            if has:
                args.append("".join(current))
            current, has = [], False
        else:
            current.append(char)
            has = True
        i += 1
    if has:
        args.append("".join(current))
    return args


def ps_native_argument(value: str) -> str:
    """ConvertTo-NativeArgument, its two regexes taken from install.ps1 and run through re."""
    body = ps_function("ConvertTo-NativeArgument")
    quote_rule, tail_rule = re.findall(r"\[regex\]::Replace\(\$\w+, '([^']*)'", body)
    if value and not re.search(ps_literal(re.search(r"-notmatch '([^']*)'", body).group(1)),
                               value):
        return value
    quoted = re.sub(quote_rule, lambda m: m.group(1) * 2 + '\\"', value)
    quoted = re.sub(tail_rule, lambda m: m.group(1) * 2, quoted)
    return '"' + quoted + '"'


@pytest.mark.parametrize("install_dir, config_dir", [
    (r"C:\Program Files\bm-hook", r"C:\ProgramData\bm-hook"),
    (r"D:\Cafe & Bar\bm hook", r"D:\网吧 配置\bm-hook"),
    (r"C:\O'Brien\bm-hook", "C:\\trailing\\"),
])
def test_sc_exe_receives_binpath_exactly_as_built(install_dir, config_dir):
    bin_path = f'"{install_dir}\\bm-hook.exe" --service --config "{config_dir}\\hook.toml"'
    argv = ["create", "bm-hook", "binPath=", bin_path, "start=", "delayed-auto",
            "DisplayName=", "bm-hook (DeepLink code rotation)", "", 'say "hi"\\']
    line = " ".join(ps_native_argument(a) for a in argv)
    assert parse_windows_command_line(line) == argv


def test_directories_and_keys_get_acls_by_well_known_sid():
    assert (ps_variable("SidSystem"), ps_variable("SidAdministrators"),
            ps_variable("SidUsers")) == ("*S-1-5-18", "*S-1-5-32-544", "*S-1-5-32-545")
    body = ps_function("Protect-Directory")
    assert '$grants = @("${SidSystem}:(OI)(CI)F", "${SidAdministrators}:(OI)(CI)F")' in body
    assert 'if ($UsersReadExecute) { $grants += "${SidUsers}:(OI)(CI)RX" }' in body
    assert "'/setowner', $SidAdministrators" in body and "'/inheritance:r', '/grant:r'" in body
    assert "Assert-NotLink $Dir" in body
    assert "Protect-Directory $InstallDir -UsersReadExecute" in ps_function("Install-HookFiles")
    setup = ps_function("Initialize-ConfigDir")
    assert "Protect-Directory $ConfigDir\n" in setup and "Protect-Directory $StateRoot\n" in setup
    assert '"${SidSystem}:F", "${SidAdministrators}:F"' in ps_function("Protect-File")
    assert "Protect-File $target" in ps_function("Copy-Key")
    # Localised names would fail on Chinese Windows; icacls exit codes are checked.
    assert not re.search(r"(SYSTEM|Administrators|Users):\(", ps_text())
    assert "if ($LASTEXITCODE -ne 0) {" in ps_function("Invoke-Icacls")


def copy_key_verdict(lines: list[str], field: str) -> tuple[bool, list[str]]:
    """Copy-Key's decision, its patterns from install.ps1: (accepted, kinds of key lines)."""
    accept = re.compile(ps_hashtable("KeyLinePattern")[field])  # -cmatch: case-sensitive
    anything = re.compile(ps_variable("AnyKeyLinePattern"))
    kinds = [m.group(1) or "" for m in map(anything.match, lines) if m]
    return sum(bool(accept.match(line)) for line in lines) == 1, kinds


def test_copy_key_takes_only_the_private_hook_token_line(tmp_path):
    from agent.cli.entry import run
    from boot_hooks.keys import read_seed_file

    assert run(["--config", str(tmp_path / "agent.toml"), "hook-token", "new"]) == 0
    private = (tmp_path / "hook-token.key").read_text().splitlines()
    public = (tmp_path / "hook-token.pub").read_text().splitlines()
    hexkey = "ab" * 32
    assert copy_key_verdict(private, "hook_token")[0]
    match = [re.match(ps_hashtable("KeyLinePattern")["hook_token"], ln) for ln in private]
    copied = next(m.group(1) for m in match if m)
    assert copied == read_seed_file(str(tmp_path / "hook-token.key"), "t", "hook_token").hex
    kinds = ps_hashtable("KeyKinds")
    for lines, field, kind in [
            (public, "hook_token", "hook_token_public"),          # the public key file
            ([f"node_private_key={hexkey}"], "hook_token", "node_private_key"),
            ([f"seat_key={hexkey}"], "hook_token", "seat_key"),
            ([hexkey], "hook_token", ""),                          # bare: maybe a public key
            ([f"HOOK_TOKEN={hexkey}"], "hook_token", "HOOK_TOKEN"),  # the hook reads no such line
            (private, "node_private_key", "hook_token"),           # the other key's line
    ]:
        accepted, found = copy_key_verdict(lines, field)
        assert not accepted and found == [kind], (lines, field)
        assert kind in kinds or kind == "HOOK_TOKEN"
    assert "PUBLIC key" in kinds["hook_token_public"] and "-ServerKeyFile" in kinds["node_private_key"]
    node_dat = [f"node_id={'cd' * 32}", f"node_private_key={hexkey}"]
    assert copy_key_verdict(node_dat, "node_private_key")[0]
    assert "$_ -cmatch $KeyLinePattern[$Field]" in ps_function("Copy-Key")
    assert "Copy-Key $TokenKeyFile 'hook_token'" in ps_text()
    assert "Copy-Key $ServerKeyFile 'node_private_key'" in ps_text()


@pytest.mark.parametrize("value, refused", [
    (r"C:\Cafe & Bar\bm-hook", False), (r"D:\网吧\bm hook", False), (r"E:\a\b\\", False),
    (r"C:\O'Brien\bm-hook", True), ('http://x\n[agent]\nurl = "http://evil"', True), ("tab\there", True),
])
def test_toml_values_are_written_literally_or_refused(value, refused):
    assert bool(re.search(ps_variable("TomlLiteralForbidden"), value)) is refused
    if not refused:  # Format-TomlLiteral: '...' around the unchanged value
        assert tomllib.loads(f"v = '{value}'\n")["v"] == value
    assert "throw \"${What}: a single quote (')" in ps_function("Format-TomlLiteral")
    # Every string that reaches hook.toml goes through it.
    assigned = [ln for ln in ps_function("New-HookConfig").splitlines() if " = ' + " in ln]
    assert len(assigned) == 10 and all("(Format-TomlLiteral $" in ln for ln in assigned)


def test_for_image_runs_the_check_and_refuses_to_seal_on_failure():
    check = ps_function("Invoke-ImageCheck")
    assert "& $HookExe --check --for-image --config $ConfigFile\n    $code = $LASTEXITCODE" in check
    assert "if ($code -ne 0) {" in check and "exit $code" in check
    main = ps_text().split("\nif ($ForImage) {\n", 1)[1].split("\n}\n", 1)[0]
    assert main.index("Clear-MachineState") < main.index("Invoke-ImageCheck")
    assert "Invoke-HookNow" not in main and "'start'" not in main
    assert ps_text().count("Invoke-HookNow") == 2  # defined, and called only under -RunNow
    assert re.search(r"\$MachineStateFiles = @\('last-code', 'bm-hook.log', 'status.json', "
                     r"'last-boot.log', 'server.key', 'seat.key'\)", ps_text())
    guard = ps_function("Assert-Arguments")
    assert "if ($ForImage -and $PSCmdlet.ParameterSetName -eq 'Direct') {" in guard
    assert "if ($ForImage -and -not $StateDir -and -not $SeatKeyFile) {" in guard


def test_results_are_unsigned_never_cast_to_int():
    assert "[int]" not in ps_text().lower()
    unsigned = ps_function("Format-Unsigned")
    assert "[long] $Code" in unsigned and "if ($Code -lt 0) { $Code += 4294967296 }" in unsigned
    assert "'{0} (0x{0:X8})'" in unsigned
    assert "if ([long]$entry.Key -eq $Code)" in ps_function("Get-ExitMeaning")


def test_run_now_waits_one_attempts_worst_case_from_the_written_deadlines():
    d = Deadlines()
    written = dict(re.findall(r"(\w+) = (\d+)", re.search(
        r"^\$Deadlines = \[ordered\]@\{(.*)\}$", ps_text(), re.M).group(1)))
    assert {k: float(v) for k, v in written.items()} == {
        "node_s": d.node_s, "deeplink_s": d.deeplink_s, "confirm_s": d.confirm_s,
        "call_s": d.call_s}
    assert "foreach ($name in $Deadlines.Keys)" in ps_function("New-HookConfig")
    formula = re.search(r"return (.+)$", ps_function("Get-RunNowLimitSeconds"), re.M).group(1)
    margin = int(re.search(r"^\$RunNowMarginS = (\d+)$", ps_text(), re.M).group(1))
    for node_waits in (1, 2):
        value = re.sub(r"\$Deadlines\.(\w+)", lambda m: written[m.group(1)], formula)
        value = value.replace("$nodeWaits", str(node_waits)).replace("$RunNowMarginS", str(margin))
        assert re.fullmatch(r"[\d\s*+]+", value)
        seconds = eval(value)  # only digits, + and *: checked above
        assert seconds >= d.node_s + 3 * d.deeplink_s + d.confirm_s + 60  # 7.5 min + margin
    wait = ps_function("Invoke-HookNow")
    assert "$limit = Get-RunNowLimitSeconds" in wait and "AddMinutes" not in ps_text()
    assert "$status.result -eq 'ok'" in wait and "$status.result -eq 'failed'" in wait


def test_installer_takes_the_one_folder_build_and_replaces_the_task():
    onedir = ps_function("Assert-OneFolderBuild")
    assert "Test-Path -LiteralPath $Dist -PathType Leaf" in onedir and "throw" in onedir
    assert "Join-Path $Dist '_internal'" in onedir
    assert "Unregister-ScheduledTask -TaskName $ServiceName" in ps_function("Remove-OldTask")
    assert ps_text().count("Remove-OldTask\n") == 2  # on install and on uninstall
    assert "Register-ScheduledTask" not in ps_text()
    assert not (ROOT / "packaging" / "windows" / "bm-hook-task.xml").exists()
    assert "UTF8Encoding($false)" in ps_text()  # no BOM in hook.toml
    assert "powershell -NoProfile -ExecutionPolicy Bypass -File install.ps1" in ps_text()


def test_installer_exit_table_is_the_hooks():
    table = dict(re.findall(r"^\s*(\d+) = '([^']*)'$", ps_text().split("$ExitMeaning = @{", 1)[1]
                            .split("\n}\n", 1)[0], re.M))
    assert {int(k) for k in table} == {int(code) for code in ExitCode}


# --- the PyInstaller spec and its pinned build requirements --------------------------------


def spec_tree():
    return ast.parse(SPEC.read_text())


def spec_call(name: str):
    return next(node for node in ast.walk(spec_tree())
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name)


def spec_list(name: str) -> list[str]:
    for node in ast.walk(spec_tree()):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise AssertionError(name)


def test_spec_is_onedir():
    compile(SPEC.read_text(), str(SPEC), "exec")
    exe = spec_call("EXE")
    assert {k.arg: getattr(k.value, "value", None) for k in exe.keywords}["exclude_binaries"] is True
    assert "a.binaries" not in [getattr(a, "attr", "") and f"a.{a.attr}" for a in exe.args]
    collect = spec_call("COLLECT")
    assert [getattr(a, "attr", getattr(a, "id", None)) for a in collect.args] == \
        ["exe", "binaries", "datas"]
    assert {k.arg: getattr(k.value, "value", None) for k in collect.keywords}["name"] == "bm-hook"


def test_spec_bundles_the_lazy_imports_and_the_service_needs():
    hidden = spec_list("HIDDEN_IMPORTS")
    for module in ("boot_hooks.direct_flow", "boot_hooks.agent_flow", "boot_hooks.resident",
                   "boot_hooks.winservice", "boot_hooks.check", "boot_hooks.state",
                   "boot_hooks.report", "sr25519", "nacl.signing", "_cffi_backend", "psutil"):
        assert module in hidden
    service = spec_list("PYWIN32_SERVICE_IMPORTS")
    for module in ("win32timezone", "win32serviceutil", "servicemanager", "win32security"):
        assert module in service
    excludes = next(k for k in spec_call("Analysis").keywords if k.arg == "excludes")
    assert {"agent", "fastapi", "uvicorn", "cryptography", "pytest"} <= \
        set(ast.literal_eval(excludes.value))
    assert '"agent"' in SPEC.read_text()  # excluded


def test_build_requirements_are_pinned_exactly():
    text = (SPEC.parent / "requirements-build.txt").read_text()
    pins = dict(re.findall(r"^([\w-]+)==([\w.]+)", text, re.M))
    assert re.fullmatch(r"6\.\d+\.\d+", pins["pyinstaller"])
    assert re.search(r'^pywin32==\d+ ; sys_platform == "win32"$', text, re.M)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"pyinstaller=={pins["pyinstaller"]}"' in pyproject  # the test below builds with it


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_spec_builds_a_onedir_that_runs(tmp_path):
    pyinstaller = pytest.importorskip("PyInstaller")
    pins = dict(re.findall(r"^([\w-]+)==([\w.]+)", (SPEC.parent / "requirements-build.txt")
                           .read_text(), re.M))
    assert pyinstaller.__version__ == pins["pyinstaller"]
    build = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--clean", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(tmp_path / "dist"), "--workpath", str(tmp_path / "build"), str(SPEC)],
        capture_output=True, text=True, timeout=540, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-3000:]
    folder = tmp_path / "dist" / "bm-hook"
    assert (folder / "_internal").is_dir() and not (tmp_path / "dist" / "bm-hook.exe").exists()
    ran = subprocess.run([str(folder / "bm-hook"), "--help"], capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 0 and "exit codes:" in ran.stdout


# --- docs/hook.md ------------------------------------------------------------------------


def test_doc_lists_every_exit_code():
    text = DOC.read_text()
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", text, re.M), code
    assert "diskless" in text and "agent mode" in text


def test_doc_installs_the_service_the_way_the_installer_does():
    text = DOC.read_text()
    assert "powershell -NoProfile -ExecutionPolicy Bypass -File" in text
    assert "-Dist .\\dist\\bm-hook" in text and "bm-hook-task.xml" not in text
    for needle in ("--check --for-image", "status.json", "hook_failure", "[state] dir",
                   "delayed", "\\\\.\\pipe\\", "bm-agent hook-token new"):
        assert needle in text, needle
