<#
.SYNOPSIS
    Install bm-hook on a Windows 10 GPU PC, or into a diskless base image, as a boot task.

.DESCRIPTION
    Copies bm-hook.exe to -InstallDir, writes hook.toml and the key file into -ConfigDir
    (ACL: SYSTEM and Administrators only), and registers the scheduled task
    bm-hook-task.xml (at startup, as SYSTEM, restart on failure). See docs/hook.md.

    Two modes:
      Agent  (-AgentUrl + -TokenKeyFile): bm-agent signs for the PC; the image holds the
             cafe-wide hook token, and each PC makes its own seat key on first boot
             (-SeatKeyFile: on the disk the diskless system keeps per machine), which
             staff approve in the dashboard. The ONLY mode for a shared diskless image.
      Direct (-ServerKeyFile): the PC's own node_private_key signs; one PC with its own
             disk only. Refused together with -ForImage.

.EXAMPLE
    # Sealing a diskless image (super-tube mode), agent mode:
    .\install.ps1 -Exe .\bm-hook.exe -AgentUrl https://192.168.1.159:8700 `
        -AgentCertSha256 bc60c7c34b2dc66661e511f470dbf6dc6eb99ff48bb4b2d838847047754b5feb `
        -TokenKeyFile .\hook-token.key -NodeUrl http://192.168.1.159:5002 -ForImage `
        -SeatKeyFile 'E:\bm-hook\seat.key'

.EXAMPLE
    # A PC with its own disk, direct mode, then one run to check:
    .\install.ps1 -Exe .\bm-hook.exe -NodeUrl http://192.168.1.159:5002 `
        -ServerKeyFile .\server.key -RunNow

.EXAMPLE
    .\install.ps1 -Uninstall
#>
[CmdletBinding(DefaultParameterSetName = 'Agent')]
param(
    [Parameter(ParameterSetName = 'Agent', Mandatory = $true)]
    [Parameter(ParameterSetName = 'Direct', Mandatory = $true)]
    [string] $Exe,

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
    [switch] $ForImage,

    [Parameter(ParameterSetName = 'Agent')]
    [Parameter(ParameterSetName = 'Direct')]
    [switch] $RunNow,

    [Parameter(ParameterSetName = 'Uninstall', Mandatory = $true)] [switch] $Uninstall,

    [string] $InstallDir = (Join-Path $env:ProgramFiles 'bm-hook'),
    [string] $ConfigDir = (Join-Path $env:ProgramData 'bm-hook'),
    [string] $TaskXml = (Join-Path $PSScriptRoot 'bm-hook-task.xml')
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$TaskName = 'bm-hook'
$ExitMeaning = @{
    0 = 'done: the node reports the new code'
    1 = 'internal error (see last-boot.log)'
    2 = 'configuration error'
    3 = 'node (or agent) unreachable'
    4 = 'DeepLink unreachable or not connected to the node'
    5 = 'auth refused (key, hook token or source IP)'
    6 = 'not confirmed: the node never reported the new code'
    7 = 'awaiting approval: approve this PC (seat key or device code) in the dashboard'
    8 = 'TLS pin mismatch: the agent certificate is not AgentCertSha256 (nothing sent)'
}

function Assert-Administrator {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object Security.Principal.WindowsPrincipal($identity)
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'Run this script from an elevated (Administrator) PowerShell.'
    }
}

function Write-Utf8NoBom([string] $Path, [string] $Text) {
    # Windows PowerShell 5's -Encoding UTF8 writes a BOM; keep files plain UTF-8.
    [IO.File]::WriteAllText($Path, $Text, (New-Object Text.UTF8Encoding($false)))
}

function Protect-ConfigDir([string] $Dir) {
    # SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544) only; no inherited ACEs.
    & icacls.exe $Dir /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "icacls failed on $Dir" }
}

function Copy-Key([string] $Source, [string] $Name) {
    if (-not (Test-Path -LiteralPath $Source -PathType Leaf)) { throw "key file not found: $Source" }
    $text = (Get-Content -LiteralPath $Source -Raw).Trim()
    if ($text -notmatch '(^|=)\s*(0x)?[0-9a-fA-F]{64}\s*$') {
        throw "$Source does not hold a 64-hex-character key"
    }
    $target = Join-Path $ConfigDir $Name
    Write-Utf8NoBom $target ($text + "`n")
    return $target
}

function Format-TomlLiteral([string] $Value) {
    if ($Value.Contains("'")) { throw "value must not contain a single quote: $Value" }
    return "'" + $Value + "'"
}

function New-HookConfig {
    $lines = @('# bm-hook configuration (docs/hook.md); written by install.ps1')
    if ($NodeUrl) { $lines += '[node]', ('url = ' + (Format-TomlLiteral $NodeUrl)) }
    if ($PSCmdlet.ParameterSetName -eq 'Agent') {
        $token = Copy-Key $TokenKeyFile 'hook-token.key'
        $lines += '[agent]', ('url = ' + (Format-TomlLiteral $AgentUrl)),
            ('token_key_file = ' + (Format-TomlLiteral $token))
        if ($AgentCertSha256) {
            $lines += ('cert_sha256 = ' + (Format-TomlLiteral $AgentCertSha256))
        }
        if ($SeatKeyFile) { $lines += ('seat_key_file = ' + (Format-TomlLiteral $SeatKeyFile)) }
    } else {
        $key = Copy-Key $ServerKeyFile 'server.key'
        $lines += '[server]', ('key_file = ' + (Format-TomlLiteral $key))
        if ($NodeId) { $lines += ('node_id = ' + (Format-TomlLiteral $NodeId)) }
    }
    $lines += '[deeplink]', ('sdk = ' + (Format-TomlLiteral $Sdk)),
        ('channel_id = ' + (Format-TomlLiteral $ChannelId))
    $lines += '[state]', ('file = ' + (Format-TomlLiteral (Join-Path $ConfigDir 'last-code')))
    Write-Utf8NoBom (Join-Path $ConfigDir 'hook.toml') (($lines -join "`n") + "`n")
}

function Register-HookTask {
    $xml = Get-Content -LiteralPath $TaskXml -Raw
    $xml = $xml.Replace('%ProgramFiles%\bm-hook', $InstallDir).Replace('%ProgramData%\bm-hook', $ConfigDir)
    Register-ScheduledTask -TaskName $TaskName -Xml $xml -Force | Out-Null
    Write-Host "Scheduled task '$TaskName' registered (at startup, SYSTEM)."
}

function Invoke-HookOnce {
    Start-ScheduledTask -TaskName $TaskName
    $deadline = (Get-Date).AddMinutes(6)
    do {
        Start-Sleep -Seconds 1
        $task = Get-ScheduledTask -TaskName $TaskName
    } while ($task.State -eq 'Running' -and (Get-Date) -lt $deadline)
    $result = (Get-ScheduledTaskInfo -TaskName $TaskName).LastTaskResult
    $meaning = if ($ExitMeaning.ContainsKey([int]$result)) { $ExitMeaning[[int]$result] } else { 'unknown' }
    Write-Host "bm-hook exited $result ($meaning); log: $(Join-Path $ConfigDir 'last-boot.log')"
}

function Clear-MachineState {
    # Nothing of this PC's own run may be sealed into a shared image.
    # seat.key above all: sealed into the image, every PC would share one seat key.
    foreach ($name in 'last-code', 'last-boot.log', 'server.key', 'seat.key') {
        Remove-Item -LiteralPath (Join-Path $ConfigDir $name) -Force -ErrorAction SilentlyContinue
    }
}

Assert-Administrator

if ($Uninstall) {
    Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false -ErrorAction SilentlyContinue
    Remove-Item -LiteralPath $InstallDir -Recurse -Force -ErrorAction SilentlyContinue
    Remove-Item -LiteralPath $ConfigDir -Recurse -Force -ErrorAction SilentlyContinue
    Write-Host 'bm-hook removed.'
    exit 0
}

if ($ForImage -and $PSCmdlet.ParameterSetName -eq 'Direct') {
    throw 'A per-machine server key must not be sealed into a shared diskless image: use -AgentUrl and -TokenKeyFile (agent mode).'
}
if (-not (Test-Path -LiteralPath $Exe -PathType Leaf)) { throw "bm-hook.exe not found: $Exe" }

New-Item -ItemType Directory -Force -Path $InstallDir, $ConfigDir | Out-Null
Protect-ConfigDir $ConfigDir
Copy-Item -LiteralPath $Exe -Destination (Join-Path $InstallDir 'bm-hook.exe') -Force
New-HookConfig
Register-HookTask

if ($ForImage) {
    Clear-MachineState
    Write-Host 'Image mode: no per-machine state left in' $ConfigDir
    Write-Host 'Before sealing: in DeepLink''s %appdata%\deeplink\config.ini delete [host] uuid and machine_id and the [device] section, or set always_refresh_id=1 (docs/hook.md).'
} elseif ($RunNow) {
    Invoke-HookOnce
}
