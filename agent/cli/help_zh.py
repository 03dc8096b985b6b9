"""Chinese ``--help`` texts of ``bm-agent``, keyed by the English text in the parsers.

``agent.cli.argtext.argparse_language("zh_CN")`` shows these instead of the English help;
a help text missing here stays English (a unit test checks that every one is here).
"""

from __future__ import annotations

__all__ = ["ZH_HELP"]

ZH_HELP: dict[str, str] = {
    "config file (env BM_AGENT_CONFIG, default /etc/bm-agent/agent.toml)":
        "配置文件（环境变量 BM_AGENT_CONFIG，默认 /etc/bm-agent/agent.toml）",
    "message language (default: the locale, then [ui] default_lang)":
        "消息语言（默认按系统语言环境，其次 [ui] default_lang）",
    "print one JSON document on stdout, for scripts": "在标准输出打印一个 JSON 文档，供脚本使用",
    "debug logging and tracebacks on errors": "调试日志，出错时打印调用栈",
    "staff account recorded as the actor (default: the OS login's [auth] os_users entry, "
    "or the account of the same name)":
        "记录为操作人的员工账号（默认：[auth] os_users 中系统用户的映射，或同名员工账号）",
    "write config, key, store, admin": "写入配置、密钥、数据库和管理员",
    "staff users": "员工账号",
    "run the service: API, dashboard, monitor, registry": "运行服务：API、网页、巡检、登记",
    "the API's HTTPS certificate": "API 的 HTTPS 证书",
    "the server inventory": "服务器清单",
    "register pending servers with the DBC node": "把待登记的服务器登记到 DBC 节点",
    "the event and audit log": "事件与审计日志",
    "cross-check every server over IPMI now": "立即通过 IPMI 核验所有服务器",
    "power on/off/soft/reset": "开机 / 强制关机 / 软关机 / 重启",
    "set the boot device": "设置启动设备",
    "online backup of the store / 在线备份数据库": "在线备份数据库",
    "replace the store by a backup (service stopped) / 恢复": "用备份替换数据库（需先停止服务）",
    "can this version use the store? / 升级前检查": "升级前检查：此版本能否使用当前数据库",
    "GPU PCs' seat keys waiting for approval / 座位密钥审批": "GPU 电脑的座位密钥审批",
    "the cafe's hook token for bm-hook / 启动钩子令牌": "bm-hook 使用的网吧启动钩子令牌",
    "run a simulated café: emulator, 8 BMCs, agent": "运行模拟网吧：节点模拟器、8 台 BMC、代理",
    "older than this id": "早于此编号",
    "only this server": "只看此服务器",
    "an event kind code or its name (审计…)": "事件类别代码或名称（审计…）",
    "only this action or family: power_on, power (all power_*), bootdev, ... or its "
    "translated name":
        "只看此操作或操作类别：power_on、power（所有电源操作）、bootdev…，或其中文名称",
    "make hook-token.key (for the PCs) and hook-token.pub (for [hook] token_public_key); "
    "never overwrites":
        "生成 hook-token.key（给电脑）和 hook-token.pub（给 [hook] token_public_key）；从不覆盖",
    "where to write both files (default: the config file's directory)":
        "两个文件的写入目录（默认：配置文件所在目录）",
    "uuid, node_id or inventory id": "uuid、node_id 或清单编号",
    "every server with these labels": "带有这些标签的所有服务器",
    "do not ask (off/soft/reset, several seats, rented seats)":
        "不询问（关机 / 软关机 / 重启、多台、出租中的机器）",
    "backup file made by `bm-agent backup`": "由 `bm-agent backup` 生成的备份文件",
    "also restore the secrets key from FILE.key": "同时从 FILE.key 恢复密钥",
    "import servers from CSV or JSON": "从 CSV 或 JSON 导入服务器",
    "list servers with their verdict": "列出服务器及其状态",
    "one server, readings and events": "单台服务器的读数和事件",
    "remove a server (and from the node)": "删除服务器（同时从节点删除）",
    "CSV (header row) or JSON list; '-' = stdin": "CSV（含表头）或 JSON 列表；'-' 表示标准输入",
    "a verdict code or its name as the table prints it (无法连接…)":
        "状态代码或表格中显示的名称（无法连接…）",
    "a registration state code or its name": "登记状态代码或名称",
    "only servers with these labels": "只看带有这些标签的服务器",
    "readings to show (default %(default)s)": "显示的读数条数（默认 %(default)s）",
    "add a user": "添加员工账号",
    "set a user's password": "设置员工密码",
    "remove a user": "删除员工账号",
    "list users": "列出员工账号",
    "viewer, operator or admin (or 只读…)": "只读、操作员或管理员（viewer / operator / admin）",
    "'-' = stdin": "'-' 表示标准输入",
    "print the SHA-256 fingerprint of [api] tls_cert": "打印 [api] tls_cert 的 SHA-256 指纹",
    "make the self-signed pair [api] tls_cert/tls_key name, if absent":
        "生成 [api] tls_cert / tls_key 指定的自签名证书（不存在时）",
    "IP or name the certificate is for, besides the [api] listen host (repeatable)":
        "证书适用的 IP 或名称，[api] listen 主机之外（可重复）",
    "one pass, then exit (default: a pass every [check] interval_s)":
        "核验一轮后退出（默认每 [check] interval_s 一轮）",
    "backup file to write (replaced atomically)": "要写入的备份文件（原子替换）",
    "also copy the secrets key to FILE.key (mode 0600)": "同时把密钥复制到 FILE.key（权限 0600）",
    "seat keys and device_id changes": "座位密钥和 DeepLink 设备码变化",
    "approve the pending seat key of these servers": "批准这些服务器待批准的座位密钥",
    "reject the pending seat key of these servers": "拒绝这些服务器待批准的座位密钥",
    "pin the changed DeepLink device_id of these servers": "确认这些服务器变化后的 DeepLink 设备码",
    "uuid or node_id": "uuid 或 node_id",
    "every server with this label": "带有此标签的所有服务器",
    "only the seat key with this fingerprint (repeatable)": "只处理此指纹的座位密钥（可重复）",
    "a state code or its name (待批准…)": "状态代码或名称（待批准…）",
    "name of the first admin user": "第一个管理员的用户名",
    "read the admin password from FILE ('-' = stdin)": "从文件读取管理员密码（'-' 表示标准输入）",
    "DBC bare-metal node URL [node] url": "DBC 裸金属节点地址 [node] url",
    "the node's dat/node.dat [node] node_dat (default %(default)s)":
        "节点的 dat/node.dat [node] node_dat（默认 %(default)s）",
    "optional DBC client node URL [node] client_url": "可选的 DBC 客户端节点地址 [node] client_url",
    "API address host:port [api] listen": "API 监听地址 主机:端口 [api] listen",
    "SQLite file [store] path": "SQLite 数据库文件 [store] path",
    "secrets key file [secrets] key_file": "密钥文件 [secrets] key_file",
    "rentals JSON [check] rentals_file": "出租状态 JSON 文件 [check] rentals_file",
    "[ui] default_lang": "默认语言 [ui] default_lang",
    "serve HTTPS: make a self-signed certificate ([api] tls_cert/tls_key)":
        "启用 HTTPS：生成自签名证书（[api] tls_cert / tls_key）",
    "IP or name the certificate is for, besides the --listen host (repeatable)":
        "证书适用的 IP 或名称，--listen 主机之外（可重复）",
    "rewrite an existing config file (the key and store are kept)":
        "重写已有配置文件（密钥和数据库保留）",
    "every boot, not just the next": "每次启动都生效，而不只是下次",
    "UEFI boot (default: legacy BIOS)": "UEFI 启动（默认传统 BIOS）",
    "do not ask (several seats)": "不询问（多台机器）",
    "work directory (default: a new temp dir)": "工作目录（默认新建临时目录）",
    "stop by itself after S s": "S 秒后自动停止",
    "BMC simulator (default: ipmi_sim when installed)": "BMC 模拟器（默认：已安装时用 ipmi_sim）",
    "first run of the node's idle power-off timer (default %(default)s s; the real node "
    "waits 180 s)": "节点空闲关机定时器首次运行时间（默认 %(default)s 秒；真实节点为 180 秒）",
}
