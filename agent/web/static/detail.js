/* One server: state, facts, DeepLink, reading history and events; refreshed while open. */
"use strict";

(function () {
  var t = BM.t, el = BM.el;
  var uuid = document.body.getAttribute("data-uuid");
  var url = "/ui/api/servers/" + encodeURIComponent(uuid);
  var etag = null;
  var POLL_MS = 5000;
  var MANUAL = "/ui/help/operations#";
  var showAllHistory = false;
  var lastHistory = [];
  var dbcDetailsOpen = false;

  function facts(node, pairs) {
    BM.clear(node);
    pairs.forEach(function (p) {
      if (p === null) return;
      var value = p[1];
      node.appendChild(el("dt", {text: p[0]}));
      node.appendChild(el("dd", {"data-field": p[2] || null},
        [typeof value === "string" ? value : value === null || value === undefined ? "—" : value]));
    });
  }

  function verdictBadge(v) {
    return el("span", {class: "vbadge v-" + v, id: "verdict", "data-verdict": v, text: BM.verdictLabel(v)});
  }

  function reasons(list) {
    return (list || []).map(function (r) { return BM.tOr("reason." + r, r); }).join("; ") || "—";
  }

  /** Next boot in plain words, plus the firmware mode when the override is in effect. */
  function bootText(r) {
    var text = BMBoot.nextBootText(r);
    if (r && r.boot_valid && r.boot_uefi !== null && r.boot_uefi !== undefined) {
      text += " · " + (r.boot_uefi ? t("bootdev.uefi") : t("bootdev.legacy"));
    }
    return text;
  }

  function manualLink(anchor) {
    return el("a", {class: "manual-link", href: MANUAL + anchor, text: t("ui.manual")});
  }

  /** What to do, always visible (phones have no hover), with the manual's section. */
  function todo(text, anchor) {
    return el("span", {class: "todo"}, [text + " ", manualLink(anchor)]);
  }

  /** DBC path: yes, or the translated cause in one line with ipmitool's lines behind Details. */
  function dbcPath(d, r) {
    var p = d.dbc_path;
    if (!p) return r && r.dbc_path_ok !== null && r.dbc_path_ok !== undefined ? (r.dbc_path_ok ? t("ui.yes") : t("ui.no")) : "—";
    if (p.ok) return t("ui.yes");
    var raw = el("details", {class: "raw", id: "dbc-raw"}, [el("summary", {text: t("ui.details")}),
      el("pre", {text: p.lines.join("\n")})]);
    raw.open = dbcDetailsOpen;
    raw.addEventListener("toggle", function () { dbcDetailsOpen = raw.open; });
    return el("span", {}, [el("span", {id: "dbc-summary", class: "res-unverified",
      text: BM.tOr("dbc_summary." + p.summary, t("dbc_summary.other"))}), raw]);
  }

  function renderState(d) {
    var v = d.verdict ? d.verdict.verdict : "unknown";
    var r = d.reading;
    var intent = d.intent || {};
    facts(document.getElementById("state"), [
      [t("ui.verdict"), verdictBadge(v)],
      [t("ui.meaning"), t("verdict_help." + v), "verdict-help"],
      [t("ui.what_to_do"), todo(t("verdict_todo." + v), "verdict-" + v), "verdict-todo"],
      [t("ui.reasons"), reasons(d.verdict && d.verdict.reasons)],
      [t("ui.since"), d.verdict ? BM.stamp(d.verdict.since) : "—"],
      [t("ui.power"), el("span", {class: "pw-" + (r && r.power || "unknown"), id: "power",
                                 text: BM.powerLabel(r && r.power)})],
      BMActions.rentalFact(d), // 出租中（至 …）/ 空闲 / 未知
      [t("ui.boot_device"), bootText(r), "next-boot"],
      [t("ui.last_checked"), r ? BM.stamp(r.ts) + " (" + BM.ago(r.ts) + ")" : t("ui.not_checked_yet")],
      [t("ui.last_success"), d.verdict && d.verdict.last_ok_at ? BM.ago(d.verdict.last_ok_at) : t("ui.never")],
      [t("ui.dbc_path"), dbcPath(d, r), "dbc-path"],
      [t("ui.requested"), intent.power ? BM.powerLabel(intent.power) + " · " + intent.actor + " · " + BM.ago(intent.power_at) : t("ui.none")],
      r && r.error_class ? [t("ui.error"), BM.tOr("reason.ipmi_" + r.error_class, r.error_class)] : null
    ]);
  }

  function renderFacts(s) {
    var labels = Object.keys(s.labels || {}).map(function (k) { return k + "=" + s.labels[k]; }).join(", ");
    facts(document.getElementById("facts"), [
      [t("ui.uuid"), s.uuid], [t("ui.ip"), s.ip], [t("ui.os"), s.os || "—"],
      [t("ui.desc"), s.desc || "—"], [t("ui.labels"), labels || "—"], [t("ui.mac"), s.mac || "—"],
      [t("ui.ipmi_host"), s.ipmi_host + (s.ipmi_port ? ":" + s.ipmi_port : "")],
      [t("ui.ipmi_user"), s.ipmi_user],
      [t("ui.node_id"), s.node_id || "—"],
      [t("ui.registration"), BM.tOr("registration." + s.state, s.state) + (s.state_detail ? " — " + s.state_detail : "")]
    ]);
  }

  /** The newest boot-hook failure report since the last confirmed rotation, or null. */
  function lastBootFailure(dl, events) {
    var since = dl && dl.last_rotated_at || 0;
    for (var i = 0; i < events.length; i++) {
      if (events[i].action === "hook_failure") return events[i].ts > since ? events[i] : null;
    }
    return null;
  }

  function renderDeepLink(dl, events) {
    var failure = lastBootFailure(dl, events || []);
    var dup = dl && dl.duplicate_with && dl.duplicate_with.length;
    var st = dl ? BM.deeplinkState(dl.freshness, dl.last_result, dl.last_rotated_at, dup) : BM.deeplinkState("unknown");
    facts(document.getElementById("deeplink"), [
      [t("ui.dl_state"), el("span", {class: "dl-" + st[0],
        text: st[0] === "stale" ? t("ui.stale_rotation") : st[1]})],
      st[0] === "stale" ? [t("ui.what_to_do"), todo(t("ui.dl_stale_help"), "deeplink-stale"), "dl-todo"] : null,
      [t("ui.device_id"), dl && dl.device_id || "—"],
      [t("ui.last_rotated"), dl && dl.last_rotated_at ? BM.stamp(dl.last_rotated_at) : t("ui.never")],
      [t("ui.last_boot_seen"), dl && dl.last_boot_seen_at ? BM.stamp(dl.last_boot_seen_at) : t("ui.never")],
      dup ? [t("ui.warning"), t("ui.duplicate_device_id", {device_id: dl.device_id,
        count: dl.duplicate_with.length + 1}) + ": " + dl.duplicate_with.join(", ")] : null,
      dl && dl.last_error ? [t("ui.error"), dl.last_error] : null,
      failure ? [t("ui.last_boot_failure"), el("span", {class: "res-failed", id: "boot-failure",
        text: BM.stamp(failure.ts) + " · " + BM.tOr("result." + failure.result, failure.result) +
          " · " + BMEvents.hookFailureText(failure)})] : null
    ]);
  }

  function table(node, heads, rows) {
    BM.clear(node);
    node.appendChild(el("thead", {}, [el("tr", {}, heads.map(function (h) { return el("th", {text: h}); }))]));
    var body = el("tbody", {}, rows);
    if (!rows.length) body.appendChild(el("tr", {}, [el("td", {colspan: heads.length, class: "muted", text: t("ui.nothing_yet")})]));
    node.appendChild(body);
  }

  function historyKey(r) {
    return [r.power, r.boot_device, r.boot_valid, r.boot_persistent, r.boot_uefi, r.dbc_path_ok,
            r.error_class].join("|");
  }

  /** Readings that differ from the one before (newest first; the oldest shown always counts). */
  function changesOnly(list) {
    return list.filter(function (r, i) {
      return i === list.length - 1 || historyKey(r) !== historyKey(list[i + 1]);
    });
  }

  function renderHistoryToggle(shown, total) {
    var box = document.getElementById("history-toggle");
    BM.clear(box);
    box.appendChild(el("span", {class: "muted", text: showAllHistory ? "" :
      t("ui.history_changes_only", {shown: shown, total: total}) + " "}));
    box.appendChild(el("button", {class: "btn small", type: "button", id: "history-all",
      "aria-expanded": showAllHistory ? "true" : "false",
      text: showAllHistory ? t("ui.history_show_changes") : t("ui.history_show_all", {total: total}),
      onclick: function () { showAllHistory = !showAllHistory; renderHistory(lastHistory); }}));
  }

  function renderHistory(all) {
    lastHistory = all;
    var list = showAllHistory ? all : changesOnly(all);
    renderHistoryToggle(list.length, all.length);
    table(document.getElementById("history"),
      [t("ui.time"), t("ui.power"), t("ui.boot_device"), t("ui.dbc_path"), t("ui.latency"), t("ui.error")],
      list.map(function (r) {
        return el("tr", {class: "history-row"}, [el("td", {class: "nowrap", text: BM.stamp(r.ts)}),
          el("td", {class: "pw-" + (r.power || "unknown"), text: BM.powerLabel(r.power)}),
          el("td", {text: bootText(r)}),
          el("td", {text: r.dbc_path_ok === null || r.dbc_path_ok === undefined ? "—" : (r.dbc_path_ok ? t("ui.yes") : t("ui.no"))}),
          el("td", {text: r.latency_ms === null || r.latency_ms === undefined ? "—" : Math.round(r.latency_ms) + " ms"}),
          el("td", {text: r.error_class ? BM.tOr("reason.ipmi_" + r.error_class, r.error_class) : ""})]);
      }));
  }

  function renderEvents(list) {
    table(document.getElementById("events"),
      [t("ui.time"), t("ui.actor"), t("ui.action"), t("ui.result"), t("ui.detail")],
      list.map(BMEvents.row));
  }

  function render(d) {
    BM.setServerNow(d.now);
    renderState(d);
    renderFacts(d);
    renderDeepLink(d.deeplink, d.events);
    renderHistory(d.history || []);
    renderEvents(d.events || []);
  }

  function poll() {
    return BM.api("GET", url, undefined, etag ? {"If-None-Match": etag} : {}).then(function (res) {
      if (res.status === 200 && res.data) {
        etag = res.headers.get("ETag");
        render(res.data);
      } else if (res.status === 404) {
        document.getElementById("title").textContent = t("server_not_found", {ident: uuid});
      }
    });
  }

  function schedule() {
    setTimeout(function () { (document.hidden ? Promise.resolve() : poll()).then(schedule, schedule); }, POLL_MS);
  }

  var act = document.getElementById("act");
  act.disabled = !BM.canAct;
  act.addEventListener("click", function () {
    BMActions.open([uuid], function () { etag = null; poll(); });
  });
  poll().then(schedule, schedule);
})();
