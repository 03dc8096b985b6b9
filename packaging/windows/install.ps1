<#
.SYNOPSIS
    Install bm-hook on a Windows 10/11 GPU PC, or into a diskless base image, as the
    Windows service "bm-hook".

.DESCRIPTION
    Run it from an elevated prompt, past the default execution policy:

        powershell -NoProfile -ExecutionPolicy Bypass -File install.ps1 -Dist .\dist\bm-hook ...

    What it does (docs/hook.md, "Install on Windows"):
      - copies the one-folder build (-Dist: bm-hook.exe + _internal\) to -InstallDir,
        owned by Administrators; SYSTEM and Administrators full control, Users read and
        execute, nothing inherited (a standard user cannot swap the program SYSTEM runs);
      - writes hook.toml and the key into -ConfigDir: SYSTEM and Administrators only;
      - creates the service bm-hook (LocalSystem, delayed automatic start, restarted by the
        Service Control Manager after 30 s / 60 s / 120 s, also after a non-crash failure).
        The service rotates the DeepLink code at every boot, retrying until DeepLink and
        the node are up ([service] retry_s, then slowly forever), then stays resident.
      - removes the scheduled task "bm-hook" of earlier versions.

    Two modes:
      Agent  (-AgentUrl + -TokenKeyFile): bm-agent signs for the PC; the image holds the
             cafe-wide hook token (hook-token.key, from bm-agent hook-token new), and each
             PC makes its own seat key on first boot, which staff approve in the dashboard.
             The ONLY mode for a shared diskless image.
      Direct (-ServerKeyFile): the PC's own node_private_key signs; one PC with its own
             disk only. Refused together with -ForImage.

    -StateDir: the per-machine directory (last code, seat key, bm-hook.log, status.json):
    on a diskless PC, the disk the diskless system keeps per machine. Default: -ConfigDir.

.EXAMPLE
    # Sealing a diskless image (super-tube / maintenance mode), agent mode:
    powershell -NoProfile -ExecutionPolicy Bypass -File install.ps1 -Dist .\dist\bm-hook `
        -AgentUrl https://192.168.1.159:8700 `
        -AgentCertSha256 bc60c7c34b2dc66661e511f470dbf6dc6eb99ff48bb4b2d838847047754b5feb `
        -TokenKeyFile .\hook-token.key -NodeUrl http://192.168.1.159:5002 `
        -StateDir 'E:\bm-hook' -ForImage

.EXAMPLE
    # A PC with its own disk, direct mode, then one run to check:
    powershell -NoProfile -ExecutionPolicy Bypass -File install.ps1 -Dist .\dist\bm-hook `
        -NodeUrl http://192.168.1.159:5002 -ServerKeyFile .\server.key -RunNow

.EXAMPLE
    powershell -NoProfile -ExecutionPolicy Bypass -File install.ps1 -Uninstall
#>
[CmdletBinding(DefaultParameterSetName = 'Agent')]
param(
    # The one-folder build: the directory holding bm-hook.exe and _internal\.
    [Parameter(ParameterSetName = 'Agent', Mandatory = $true)]
    [Parameter(ParameterSetName = 'Direct', Mandatory = $true)]
    [string] $Dist,

    [Parameter(ParameterSetName = 'Agent')]
    [Parameter(ParameterSetName = 'Direct', Mandatory = $true)]
    [string] $NodeUrl = '',

    [Parameter(ParameterSetName = 'Agent', Mandatory = $true)] [string] $AgentUrl,
    [Parameter(ParameterSetName = 'Agent', Mandatory = $true)] [string] $TokenKeyFile,
    # SHA-256 of the agent's certificate (bm-agent tls fingerprint); needed for https://.
    [Parameter(ParameterSetName = 'Agent')] [string] $AgentCertSha256 = '',
    [Parameter(ParameterSetName = 'Agent')] [string] $SeatKeyFile = '',

    [Parameter(ParameterSetName = 'Direct', Mandatory = $true)] [string] $ServerKeyFile,
    [Parameter(ParameterSetName = 'Direct')] [string] $NodeId = '',

    [Parameter(ParameterSetName = 'Agent')]
    [Parameter(ParameterSetName = 'Direct')]
    [ValidateSet('pipe', 'none')] [string] $Sdk = 'pipe',

    [Parameter(ParameterSetName = 'Agent')]
    [Parameter(ParameterSetName = 'Direct')]
    [string] $ChannelId = 'bm-hook',

    [Parameter(ParameterSetName = 'Agent')]
    [Parameter(ParameterSetName = 'Direct')]
    [string] $StateDir = '',

    [Parameter(ParameterSetName = 'Agent')]
    [Parameter(ParameterSetName = 'Direct')]
    [switch] $ForImage,

    [Parameter(ParameterSetName = 'Agent')]
    [Parameter(ParameterSetName = 'Direct')]
    [switch] $RunNow,

    [Parameter(ParameterSetName = 'Uninstall', Mandatory = $true)] [switch] $Uninstall,

    [string] $InstallDir = (Join-Path $env:ProgramFiles 'bm-hook'),
    [string] $ConfigDir = (Join-Path $env:ProgramData 'bm-hook')
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ServiceName = 'bm-hook'
$DisplayName = 'bm-hook (DeepLink code rotation)'
$Description = 'Gives this PC a fresh DeepLink verification code at every boot and publishes it through the DBC bare-metal node (docs/hook.md).'
# Well-known SIDs, not names: "SYSTEM", "Administrators" and "Users" are localised on
# Chinese Windows.
$SidSystem = '*S-1-5-18'
$SidAdministrators = '*S-1-5-32-544'
$SidUsers = '*S-1-5-32-545'
# [deadlines] written into hook.toml (bm-hook's defaults); -RunNow's wait is derived from them.
$Deadlines = [ordered]@{ node_s = 60; deeplink_s = 120; confirm_s = 30; call_s = 5 }
$RunNowMarginS = 60
# Nothing of one PC's own runs may be sealed into a shared image (seat.key above all:
# sealed into the image, every PC would share one seat key).
$MachineStateFiles = @('last-code', 'bm-hook.log', 'status.json', 'last-boot.log', 'server.key', 'seat.key')
$ExitMeaning = @{
    0 = 'done: the node reports the new code'
    1 = 'internal error (see bm-hook.log)'
    2 = 'configuration error'
    3 = 'node (or agent) unreachable'
    4 = 'DeepLink unreachable or not connected to the node'
    5 = 'auth refused (key, hook token or source IP)'
    6 = 'not confirmed: the node never reported the new code'
    7 = 'awaiting approval: approve this PC (seat key or device code) in the dashboard'
    8 = 'TLS pin mismatch: the agent certificate is not AgentCertSha256 (nothing sent)'
}

# Key files: the ONE line each option accepts (case-sensitive, as bm-hook reads it), and
# what any other key line is, to tell the operator which file they gave instead.
$KeyLinePattern = @{
    hook_token       = '^\s*hook_token\s*=\s*(?:0x)?([0-9a-fA-F]{64})\s*$'
    node_private_key = '^\s*node_private_key\s*=\s*(?:0x)?([0-9a-fA-F]{64})\s*$'
}
$AnyKeyLinePattern = '^\s*(?:([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?(?:0x)?[0-9a-fA-F]{64}\s*$'
$KeyKinds = @{
    hook_token        = 'the cafe hook token (hook-token.key): it belongs to -TokenKeyFile (agent mode)'
    hook_token_public = 'the hook token''s PUBLIC key (hook-token.pub): it belongs in the agent''s [hook] token_public_key, not on the PC; give hook-token.key'
    node_private_key  = 'a PC''s server key (node_private_key, from node.dat / the bare_metal list): it belongs to -ServerKeyFile (direct mode)'
    seat_key          = 'a PC''s own seat key (seat.key, which bm-hook makes itself on first boot): never give it to the installer'
    node_id           = 'a node_id, not a key'
    ''                = 'a bare 64-hex key without a name: probably a public key (such as the agent''s hook_token.pub)'
}
# TOML literal strings ('...') hold any character but a single quote and control characters.
$TomlLiteralForbidden = '[''\x00-\x1F\x7F]'

function Assert-Administrator {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object Security.Principal.WindowsPrincipal($identity)
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'Run this script from an elevated (Administrator) prompt: powershell -NoProfile -ExecutionPolicy Bypass -File install.ps1 ...'
    }
}

function Format-Unsigned([long] $Code) {
    # Windows exit and result codes are unsigned 32-bit; PowerShell may hold them as a
    # negative Int32 (0x80070002 arrives as -2147024894). Never cast them to a 32-bit int.
    if ($Code -lt 0) { $Code += 4294967296 }
    return ('{0} (0x{0:X8})' -f $Code)
}

function Get-ExitMeaning([long] $Code) {
    if ($Code -lt 0) { $Code += 4294967296 }
    foreach ($entry in $ExitMeaning.GetEnumerator()) {
        if ([long]$entry.Key -eq $Code) { return $entry.Value }
    }
    return 'not a bm-hook exit code (a Windows error code: look it up with certutil -error)'
}

function Resolve-FullPath([string] $Path, [string] $Option) {
    if (-not $Path) { return '' }
    try { $full = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Path) }
    catch { throw "${Option}: not a usable path (is its drive there?): $Path" }
    if ($full.Contains('"')) { throw "${Option}: a path cannot contain a double quote: $Path" }
    return $full
}

function ConvertTo-NativeArgument([string] $Value) {
    # Quote one argument by the MSVCRT / CommandLineToArgvW rules, so that the program
    # receives exactly $Value (spaces, &, quotes and non-ASCII included).
    if ($Value -and $Value -notmatch '[\s"]') { return $Value }
    $quoted = [regex]::Replace($Value, '(\\*)"', { param($m) ($m.Groups[1].Value * 2) + '\"' })
    $quoted = [regex]::Replace($quoted, '(\\+)$', { param($m) $m.Groups[1].Value * 2 })
    return '"' + $quoted + '"'
}

function Invoke-Sc([string[]] $Arguments, [long[]] $Accept = @(0)) {
    # Through Process.Start with a command line built here: Windows PowerShell 5.1 and
    # PowerShell 7 pass embedded quotes (binPath=) to native programs differently.
    $info = New-Object Diagnostics.ProcessStartInfo
    $info.FileName = Join-Path $env:SystemRoot 'System32\sc.exe'
    $info.Arguments = (@($Arguments | ForEach-Object { ConvertTo-NativeArgument $_ }) -join ' ')
    $info.UseShellExecute = $false
    $process = [Diagnostics.Process]::Start($info)
    $process.WaitForExit()
    $code = [long]$process.ExitCode
    if ($Accept -notcontains $code) {
        throw ('sc.exe {0} failed: exit {1}' -f ($Arguments[0..1] -join ' '), (Format-Unsigned $code))
    }
    return $code
}

function Invoke-Icacls([string[]] $Arguments) {
    & icacls.exe @Arguments | Out-Null
    if ($LASTEXITCODE -ne 0) {
        throw ('icacls {0} failed: exit {1}' -f ($Arguments -join ' '), (Format-Unsigned $LASTEXITCODE))
    }
}

function Assert-NotLink([string] $Path) {
    $item = Get-Item -LiteralPath $Path -Force -ErrorAction SilentlyContinue
    if ($item -and ($item.Attributes -band [IO.FileAttributes]::ReparsePoint)) {
        throw "$Path is a link (junction or symbolic link): remove it, or choose another directory"
    }
}

function Protect-Directory([string] $Dir, [switch] $UsersReadExecute) {
    # Owner Administrators (a pre-created folder's owner could rewrite the ACL), explicit
    # ACEs of children dropped, then only these grants, inherited by everything inside.
    Assert-NotLink $Dir
    $grants = @("${SidSystem}:(OI)(CI)F", "${SidAdministrators}:(OI)(CI)F")
    if ($UsersReadExecute) { $grants += "${SidUsers}:(OI)(CI)RX" }
    Invoke-Icacls @($Dir, '/setowner', $SidAdministrators, '/T', '/Q')
    Invoke-Icacls @($Dir, '/reset', '/T', '/Q')
    Invoke-Icacls (@($Dir, '/inheritance:r', '/grant:r') + $grants + @('/Q'))
}

function Protect-File([string] $File) {
    Invoke-Icacls @($File, '/setowner', $SidAdministrators, '/Q')
    Invoke-Icacls @($File, '/inheritance:r', '/grant:r', "${SidSystem}:F", "${SidAdministrators}:F", '/Q')
}

function Write-Utf8NoBom([string] $Path, [string] $Text) {
    # Windows PowerShell 5's -Encoding UTF8 writes a BOM; keep files plain UTF-8.
    [IO.File]::WriteAllText($Path, $Text, (New-Object Text.UTF8Encoding($false)))
}

function Format-TomlLiteral([string] $Value, [string] $What) {
    if ($Value -match $TomlLiteralForbidden) {
        throw "${What}: a single quote (') or a control character cannot be written into hook.toml (TOML literal string); choose a value or path without it: $Value"
    }
    return "'" + $Value + "'"
}

function Get-KeyLineKind([string] $Line) {
    $match = [regex]::Match($Line, $AnyKeyLinePattern)
    if (-not $match.Success) { return $null }
    return $match.Groups[1].Value
}

function Copy-Key([string] $Source, [string] $Field, [string] $Option, [string] $Name) {
    # Accept only the line bm-hook reads ($Field=<64 hex>); say which file was given instead.
    if (-not (Test-Path -LiteralPath $Source -PathType Leaf)) { throw "${Option}: key file not found: $Source" }
    $lines = [IO.File]::ReadAllLines((Resolve-FullPath $Source $Option))
    $keys = @($lines | Where-Object { $_ -cmatch $KeyLinePattern[$Field] })
    if ($keys.Count -eq 1) {
        $hex = ([regex]::Match($keys[0], $KeyLinePattern[$Field])).Groups[1].Value.ToLowerInvariant()
        $target = Join-Path $ConfigDir $Name
        Write-Utf8NoBom $target ("$Field=$hex`n")
        Protect-File $target
        return $target
    }
    if ($keys.Count -gt 1) { throw "${Option}: $Source holds $($keys.Count) '$Field=' lines; keep exactly one" }
    $found = @($lines | ForEach-Object { Get-KeyLineKind $_ } | Where-Object { $null -ne $_ })
    $hint = if ($found.Count -eq 0) { 'no line of 64 hex digits at all' } else {
        ($found | Select-Object -Unique | ForEach-Object {
            if ($KeyKinds.ContainsKey($_)) { $KeyKinds[$_] } else { "a '$_=' line, unknown to bm-hook" }
        }) -join '; '
    }
    throw "${Option}: $Source has no '$Field=<64 hex>' line. It holds $hint."
}

function Assert-OneFolderBuild {
    if (Test-Path -LiteralPath $Dist -PathType Leaf) {
        throw "-Dist $Dist is a file: give the one-folder build (the folder dist\bm-hook holding bm-hook.exe and _internal\), not a onefile exe (a onefile exe unpacks itself at every start, unsafe for a program run as SYSTEM: CVE-2019-16784)"
    }
    $exe = Join-Path $Dist 'bm-hook.exe'
    $internal = Join-Path $Dist '_internal'
    if (-not (Test-Path -LiteralPath $exe -PathType Leaf) -or -not (Test-Path -LiteralPath $internal -PathType Container)) {
        throw "-Dist ${Dist}: no bm-hook.exe beside an _internal folder; build it with packaging\bm-hook.spec (onedir) and give dist\bm-hook"
    }
}

function Assert-Arguments {
    if ($ForImage -and $PSCmdlet.ParameterSetName -eq 'Direct') {
        throw 'A per-machine server key must not be sealed into a shared diskless image: use -AgentUrl and -TokenKeyFile (agent mode).'
    }
    if ($ForImage -and -not $StateDir -and -not $SeatKeyFile) {
        throw '-ForImage needs -StateDir (or -SeatKeyFile): the seat key, last code and log must live on the disk the diskless system keeps per machine, not on the reset system disk.'
    }
    if ($ForImage -and $RunNow) {
        throw '-ForImage and -RunNow exclude each other: an image is sealed without a run (boot one PC from it to test).'
    }
    Assert-OneFolderBuild
}

function Stop-HookService {
    $service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
    if ($null -eq $service -or $service.Status -eq 'Stopped') { return }
    Stop-Service -Name $ServiceName -Force
    $service.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60))
}

function Remove-OldTask {
    # Versions before the service ran bm-hook as a scheduled task of the same name.
    $task = Get-ScheduledTask -TaskName $ServiceName -ErrorAction SilentlyContinue
    if ($null -ne $task) {
        Unregister-ScheduledTask -TaskName $ServiceName -Confirm:$false
        Write-Host "Removed the scheduled task '$ServiceName' of an earlier version."
    }
}

function Remove-InstallDir {
    Assert-NotLink $InstallDir
    if (-not (Test-Path -LiteralPath $InstallDir)) { return }
    $ours = Test-Path -LiteralPath (Join-Path $InstallDir 'bm-hook.exe') -PathType Leaf
    $empty = -not (Get-ChildItem -LiteralPath $InstallDir -Force | Select-Object -First 1)
    if (-not ($ours -or $empty)) {
        throw "-InstallDir $InstallDir exists and is not a bm-hook installation: choose a new or empty folder"
    }
    Remove-Item -LiteralPath $InstallDir -Recurse -Force
}

function Install-HookFiles {
    Remove-InstallDir
    New-Item -ItemType Directory -Path $InstallDir | Out-Null
    Protect-Directory $InstallDir -UsersReadExecute
    # New files inherit the folder's ACL.
    Get-ChildItem -LiteralPath $Dist -Force | Copy-Item -Destination $InstallDir -Recurse -Force
    Write-Host "bm-hook copied to $InstallDir (Users: read and execute only)."
}

function New-HookConfig {
    $lines = @('# bm-hook configuration (docs/hook.md); written by install.ps1')
    if ($NodeUrl) { $lines += '[node]', ('url = ' + (Format-TomlLiteral $NodeUrl '-NodeUrl')) }
    if ($PSCmdlet.ParameterSetName -eq 'Agent') {
        $token = Copy-Key $TokenKeyFile 'hook_token' '-TokenKeyFile' 'hook-token.key'
        $lines += '[agent]', ('url = ' + (Format-TomlLiteral $AgentUrl '-AgentUrl')),
            ('token_key_file = ' + (Format-TomlLiteral $token '-ConfigDir'))
        if ($AgentCertSha256) {
            $lines += ('cert_sha256 = ' + (Format-TomlLiteral $AgentCertSha256 '-AgentCertSha256'))
        }
        if ($SeatKeyFile) { $lines += ('seat_key_file = ' + (Format-TomlLiteral $SeatKeyFile '-SeatKeyFile')) }
    } else {
        $key = Copy-Key $ServerKeyFile 'node_private_key' '-ServerKeyFile' 'server.key'
        $lines += '[server]', ('key_file = ' + (Format-TomlLiteral $key '-ConfigDir'))
        if ($NodeId) { $lines += ('node_id = ' + (Format-TomlLiteral $NodeId '-NodeId')) }
    }
    $lines += '[deeplink]', ('sdk = ' + (Format-TomlLiteral $Sdk '-Sdk')),
        ('channel_id = ' + (Format-TomlLiteral $ChannelId '-ChannelId'))
    $lines += '[deadlines]'
    foreach ($name in $Deadlines.Keys) { $lines += ('{0} = {1}' -f $name, $Deadlines[$name]) }
    $lines += '[state]', ('dir = ' + (Format-TomlLiteral $StateRoot '-StateDir'))
    Write-Utf8NoBom $ConfigFile (($lines -join "`n") + "`n")
}

function Initialize-ConfigDir {
    New-Item -ItemType Directory -Force -Path $ConfigDir | Out-Null
    Protect-Directory $ConfigDir
    if ($StateRoot -ne $ConfigDir) {
        New-Item -ItemType Directory -Force -Path $StateRoot | Out-Null
        Protect-Directory $StateRoot
    }
    New-HookConfig
    Write-Host "hook.toml and the key written to $ConfigDir (SYSTEM and Administrators only); state in $StateRoot."
}

function Register-HookService {
    $binPath = '"{0}" --service --config "{1}"' -f $HookExe, $ConfigFile
    $verb = if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) { 'config' } else { 'create' }
    Invoke-Sc @($verb, $ServiceName, 'binPath=', $binPath, 'start=', 'delayed-auto', 'obj=', 'LocalSystem', 'DisplayName=', $DisplayName) | Out-Null
    Invoke-Sc @('description', $ServiceName, $Description) | Out-Null
    # Restart after 30 s, 60 s, 120 s; the failure count resets after a day. failureflag 1:
    # also when the service stops itself with an error, not only when the process crashes.
    Invoke-Sc @('failure', $ServiceName, 'reset=', '86400', 'actions=', 'restart/30000/restart/60000/restart/120000') | Out-Null
    Invoke-Sc @('failureflag', $ServiceName, '1') | Out-Null
    Write-Host "Service '$ServiceName' ready: LocalSystem, delayed automatic start, restarts on failure."
}

function Clear-MachineState {
    foreach ($dir in @($ConfigDir, $StateRoot) | Select-Object -Unique) {
        foreach ($name in $MachineStateFiles) {
            Remove-Item -LiteralPath (Join-Path $dir $name) -Force -ErrorAction SilentlyContinue
        }
    }
}

function Invoke-ImageCheck {
    # The image is sealed only if bm-hook itself finds config, keys, ACLs and the state
    # directory right, and nothing per-machine left in it.
    & $HookExe --check --for-image --config $ConfigFile
    $code = $LASTEXITCODE
    if ($code -ne 0) {
        Write-Host ('bm-hook --check --for-image failed: exit {0}, {1}. Do NOT seal this image: fix the problems listed above and run install.ps1 -ForImage again.' -f (Format-Unsigned $code), (Get-ExitMeaning $code)) -ForegroundColor Red
        if ($code -gt 0 -and $code -lt 256) { exit $code }
        exit 1
    }
}

function Get-RunNowLimitSeconds {
    # One rotation attempt's worst case, from the [deadlines] written into hook.toml: the
    # node probe (and in agent mode the agent's whoami) up to node_s each; DeepLink's SDK,
    # its LAN session and the publish up to deeplink_s each; the read-back up to confirm_s
    # plus one call; and a margin for the service's start.
    $nodeWaits = if ($PSCmdlet.ParameterSetName -eq 'Agent') { 2 } else { 1 }
    return $nodeWaits * $Deadlines.node_s + 3 * $Deadlines.deeplink_s + $Deadlines.confirm_s + $Deadlines.call_s + $RunNowMarginS
}

function Read-HookStatus([string] $Path) {
    try { return Get-Content -LiteralPath $Path -Raw -ErrorAction Stop | ConvertFrom-Json }
    catch { return $null }
}

function Write-HookStatus($Status) {
    Write-Host ('attempt {0}: {1}, exit {2} ({3}): {4}' -f $Status.attempt, $Status.result,
        $Status.exit_code, (Get-ExitMeaning $Status.exit_code), $Status.message)
}

function Invoke-HookNow {
    # (Re)start the service and follow status.json until ok, a final failure, or one
    # attempt's worst case; the service itself keeps retrying after that.
    Stop-HookService
    $statusFile = Join-Path $StateRoot 'status.json'
    Remove-Item -LiteralPath $statusFile -Force -ErrorAction SilentlyContinue
    Invoke-Sc @('start', $ServiceName) | Out-Null
    $limit = Get-RunNowLimitSeconds
    Write-Host "Service started; waiting up to $limit s for $statusFile ..."
    $deadline = (Get-Date).AddSeconds($limit)
    $status = $null
    $shown = ''
    while ((Get-Date) -lt $deadline) {
        Start-Sleep -Seconds 2
        $status = Read-HookStatus $statusFile
        if ($null -ne $status -and "$($status.attempt)/$($status.result)" -ne $shown) {
            Write-HookStatus $status
            $shown = "$($status.attempt)/$($status.result)"
        }
        if ($null -ne $status -and $status.result -eq 'ok') { return 0 }
        if ($null -ne $status -and $status.result -eq 'failed') { return [long]$status.exit_code }
        $service = Get-CimInstance -ClassName Win32_Service -Filter "Name='$ServiceName'"
        if ($service.State -eq 'Stopped') {
            Write-Host ('The service stopped: exit {0}, service-specific {1}; see {2}' -f (Format-Unsigned $service.ExitCode),
                (Format-Unsigned $service.ServiceSpecificExitCode), (Join-Path $StateRoot 'bm-hook.log')) -ForegroundColor Red
            return 1
        }
    }
    Write-Host "No result after $limit s. The service keeps retrying ([service] retry_s, then slowly forever); watch $statusFile and $(Join-Path $StateRoot 'bm-hook.log')." -ForegroundColor Yellow
    if ($null -ne $status) { return [long]$status.exit_code }
    return 1
}

function Uninstall-Hook {
    Stop-HookService
    if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
        # 1072: already marked for deletion (an open services.msc keeps it until closed).
        Invoke-Sc @('delete', $ServiceName) -Accept @(0, 1072) | Out-Null
    }
    Remove-OldTask
    Remove-InstallDir
    Assert-NotLink $ConfigDir
    Remove-Item -LiteralPath $ConfigDir -Recurse -Force -ErrorAction SilentlyContinue
    Write-Host 'bm-hook removed (a -StateDir on the per-machine disk is left as it is).'
}

Assert-Administrator
$InstallDir = Resolve-FullPath $InstallDir '-InstallDir'
$ConfigDir = Resolve-FullPath $ConfigDir '-ConfigDir'
if ($Uninstall) {
    Uninstall-Hook
    exit 0
}
$Dist = Resolve-FullPath $Dist '-Dist'
$StateDir = Resolve-FullPath $StateDir '-StateDir'
$SeatKeyFile = Resolve-FullPath $SeatKeyFile '-SeatKeyFile'
$StateRoot = if ($StateDir) { $StateDir } else { $ConfigDir }
$HookExe = Join-Path $InstallDir 'bm-hook.exe'
$ConfigFile = Join-Path $ConfigDir 'hook.toml'
Assert-Arguments

Stop-HookService
Remove-OldTask
Install-HookFiles
Initialize-ConfigDir
Register-HookService

if ($ForImage) {
    Clear-MachineState
    Invoke-ImageCheck
    Write-Host "Image mode: checked, the service starts at each PC's boot; no per-machine state left in $ConfigDir or $StateRoot."
    Write-Host 'Before sealing: in DeepLink''s %appdata%\deeplink\config.ini delete [host] uuid and machine_id and the [device] section, or set always_refresh_id=1 (docs/hook.md).'
    exit 0
}
if ($RunNow) {
    $code = Invoke-HookNow
    Write-Host ('bm-hook: exit {0}: {1}' -f (Format-Unsigned $code), (Get-ExitMeaning $code))
    if ($code -gt 0 -and $code -lt 256) { exit $code }
    if ($code -eq 0) { exit 0 }
    exit 1
}
Write-Host 'Installed; the service starts at the next boot (delayed automatic start), or now with: sc.exe start bm-hook'
