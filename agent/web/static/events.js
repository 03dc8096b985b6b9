/* Event rows (audit log and a server's events) and the paged audit log page. */
"use strict";

var BMEvents = (function () {
  var t = BM.t, el = BM.el;

  function actionText(e) {
    var base = BM.tOr("action." + e.action, e.action || BM.tOr("event_kind." + e.kind, e.kind));
    var d = e.detail || {};
    if (e.action === "bootdev" && d.device) {
      base += " " + BM.bootLabel(d.device) + (d.persistent ? " · " + t("bootdev.persistent") : "") +
        (d.uefi ? " · " + t("bootdev.uefi") : "");
    }
    return base;
  }

  function resultText(e) {
    if (e.kind === "verdict") return BM.verdictLabel(e.result);
    var text = BM.tOr("result." + e.result, e.result || "");
    if (e.result === "verified" || e.result === "unverified") return text;
    if (e.verified === true) return text + " · " + t("result.verified");
    if (e.verified === false && e.result === "ok") return text + " · " + t("result.unverified");
    return text;
  }

  function resultClass(e) {
    if (e.kind === "verdict") return "";
    if (e.action === "hook_failure") return "res-failed";
    if (e.verified === true) return "res-verified";
    if (e.result === "unverified" || (e.verified === false && e.result === "ok")) return "res-unverified";
    if (FAILED.test(e.result || "")) return "res-failed";
    return "";
  }

  var FAILED = /^(failed|error|refused|conflict|not_found|dead|ipmi_.*)$/;

  // Keys shown another way (action, result) or only in English (message): left out.
  var HIDDEN = {device: 1, persistent: 1, uefi: 1, code: 1, command: 1, target: 1, message: 1,
                reading: 1, duration_s: 1};

  function readingText(r) {
    if (!r) return "";
    if (r.error) return BM.tOr("reason.ipmi_" + r.error, r.error);
    var bits = [];
    if (r.power) bits.push(BM.powerLabel(r.power));
    if (r.boot_device) bits.push(BM.bootLabel(r.boot_device));
    return bits.length ? t("ui.read_back", {state: bits.join(" · ")}) : "";
  }

  function duration(s) {
    if (typeof s !== "number") return "?";
    if (s < 120) return Math.round(s) + " s";
    return s < 7200 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h";
  }

  /** A failed boot-hook run the PC reported (agent.hook.reports): its own message, as sent. */
  function hookFailureText(e) {
    var d = e.detail || {};
    var text = t("ui.hook_failure_detail", {exit_code: d.exit_code, attempt: d.attempt,
      uptime: duration(d.uptime_s), message: d.message || ""});
    if (d.seat_state === "pending") text += " · " + t("ui.seat_pending_report", {seat: d.seat || "?"});
    if (d.repeats) text += " · repeats=" + d.repeats;
    return text;
  }

  function detailText(e) {
    var d = e.detail || {};
    if (e.action === "hook_failure") return hookFailureText(e);
    if (e.kind === "verdict") {
      var prev = d.previous ? BM.verdictLabel(d.previous) : "—";
      var why = (d.reasons || []).map(function (r) { return BM.tOr("reason." + r, r); }).join("; ");
      return prev + " → " + BM.verdictLabel(e.result) + (why ? " (" + why + ")" : "");
    }
    var parts = [];
    if (d.code && d.code.indexOf("ipmi_") === 0) parts.push(BM.tOr("reason." + d.code, d.code));
    else if (d.code && d.code !== "verified" && d.code !== "unverified") parts.push(BM.tOr("ui.result_" + d.code, d.code));
    var seen = readingText(d.reading);
    if (seen) parts.push(seen);
    if (typeof d.duration_s === "number") parts.push(d.duration_s.toFixed(1) + " s");
    Object.keys(d).filter(function (k) { return !HIDDEN[k]; }).forEach(function (k) {
      var v = d[k];
      parts.push(k + "=" + (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)));
    });
    return parts.join(" · ");
  }

  /** One <tr> for an event record (API shape: id, ts, actor, kind, action, server_uuid, ...). */
  function row(e, withServer) {
    var cells = [el("td", {class: "nowrap", text: BM.stamp(e.ts)}),
                 el("td", {text: e.actor.charAt(0) === "@" ? BM.tOr("actor." + e.actor.slice(1), e.actor) : e.actor})];
    if (withServer) {
      cells.push(el("td", {class: "nowrap"}, [e.server_uuid ? el("a", {href: "/ui/servers/" + encodeURIComponent(e.server_uuid),
                                                         text: e.server_uuid}) : "—"]));
    }
    cells.push(el("td", {class: "nowrap", text: actionText(e)}),
               el("td", {class: "nowrap " + resultClass(e), text: resultText(e)}),
               el("td", {text: detailText(e)}));
    return el("tr", {"data-event-id": String(e.id), "data-kind": e.kind}, cells);
  }

  /** The audit log page: newest first, keyset pages (before=id), filter by kind and server. */
  function auditPage() {
    var tableNode = document.getElementById("events");
    var kind = document.getElementById("kind");
    var server = document.getElementById("server-filter");
    var older = document.getElementById("older");
    var newer = document.getElementById("newer");
    var info = document.getElementById("page-info");
    var stack = []; // before-ids of the pages above the current one
    var current = null, next = null;
    var params = new URLSearchParams(location.search);
    kind.value = params.get("kind") || "audit";
    var limit = Math.min(200, Math.max(1, parseInt(params.get("limit") || "50", 10) || 50));
    server.value = params.get("server") || "";

    function load(before) {
      var q = new URLSearchParams();
      if (kind.value) q.set("kind", kind.value);
      if (server.value.trim()) q.set("server", server.value.trim());
      if (before) q.set("before", String(before));
      q.set("limit", String(limit));
      BM.api("GET", "/ui/api/events?" + q.toString()).then(function (res) {
        if (!res.ok) {
          info.textContent = BM.errorText(res.status, res.data);
          return;
        }
        BM.setServerNow(res.data.now);
        current = before;
        next = res.data.next_before_id;
        BM.clear(tableNode);
        tableNode.appendChild(el("thead", {}, [el("tr", {}, [t("ui.time"), t("ui.actor"), t("ui.server"),
          t("ui.action"), t("ui.result"), t("ui.detail")].map(function (h) { return el("th", {text: h}); }))]));
        var items = res.data.items.map(function (e) { return row(e, true); });
        if (!items.length) items = [el("tr", {}, [el("td", {colspan: 6, class: "muted", text: t("ui.nothing_yet")})])];
        tableNode.appendChild(el("tbody", {}, items));
        older.disabled = !next;
        newer.disabled = stack.length === 0;
        info.textContent = t("ui.page_n", {n: stack.length + 1});
        var keep = new URLSearchParams();
        if (kind.value !== "audit") keep.set("kind", kind.value);
        if (server.value.trim()) keep.set("server", server.value.trim());
        if (limit !== 50) keep.set("limit", String(limit));
        history.replaceState(null, "", location.pathname + (keep.toString() ? "?" + keep : ""));
      });
    }

    older.addEventListener("click", function () { if (next) { stack.push(current); load(next); } });
    newer.addEventListener("click", function () { if (stack.length) load(stack.pop()); });
    kind.addEventListener("change", function () { stack = []; load(null); });
    var debounce = null;
    server.addEventListener("input", function () {
      clearTimeout(debounce);
      debounce = setTimeout(function () { stack = []; load(null); }, 300);
    });
    load(null);
  }

  if (document.body.getAttribute("data-page") === "audit") auditPage();
  return {row: function (e) { return row(e, false); }, hookFailureText: hookFailureText};
})();
