/* bm-agent dashboard: shared helpers. No dependencies; data only ever goes in via textContent. */
"use strict";

var BM = (function () {
  var body = document.body;
  var catalogue = JSON.parse(document.getElementById("bm-i18n").textContent);
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var lang = body.getAttribute("data-lang") || "zh_CN";
  var canAct = body.getAttribute("data-can-act") === "true";
  var canImport = body.getAttribute("data-can-import") === "true";
  var clockSkew = 0; // server time minus browser time, seconds

  /** Translate key with {placeholders} (count 1: key_one if any); unknown keys show as themselves. */
  function t(key, params) {
    // Plural: a "<key>_one" text, where the language has one, for a count of 1.
    if (params && params.count === 1 && has(key + "_one")) key += "_one";
    var text = Object.prototype.hasOwnProperty.call(catalogue, key) ? catalogue[key] : key;
    return text.replace(/\{([a-z_]+)\}/g, function (whole, name) {
      return params && params[name] !== undefined && params[name] !== null ? String(params[name]) : whole;
    });
  }

  function has(key) { return Object.prototype.hasOwnProperty.call(catalogue, key); }

  /** Translate key if the catalogue has it, else fallback (a raw code, say). */
  function tOr(key, fallback) {
    return Object.prototype.hasOwnProperty.call(catalogue, key) ? catalogue[key] : fallback;
  }

  /** Build an element: el("td", {class: "x", dataset: {u: "1"}}, ["text", child]). */
  function el(tag, props, children) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (name) {
        var value = props[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "class") node.className = value;
        else if (name === "text") node.textContent = value;
        else if (name === "dataset") Object.keys(value).forEach(function (k) { node.dataset[k] = value[k]; });
        else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
        else if (value === true) node.setAttribute(name, "");
        else node.setAttribute(name, String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function serverNow() {
    return Date.now() / 1000 + clockSkew;
  }

  function setServerNow(now) {
    if (typeof now === "number") clockSkew = now - Date.now() / 1000;
  }

  /** "12 s ago", "5 min ago", or the date for old times. */
  function ago(ts) {
    if (ts === null || ts === undefined) return t("ui.never");
    var seconds = Math.max(0, Math.round(serverNow() - ts));
    if (seconds < 60) return t("ui.ago_s", {n: seconds});
    if (seconds < 3600) return t("ui.ago_min", {n: Math.floor(seconds / 60)});
    if (seconds < 86400) return t("ui.ago_h", {n: Math.floor(seconds / 3600)});
    return t("ui.ago_d", {n: Math.floor(seconds / 86400)});
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  var zone = body.getAttribute("data-tz") || "UTC"; // [ui] timezone, the same as the CLI's
  var zoneParts = null;
  try {
    zoneParts = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "longOffset"});
  } catch (e) { zoneParts = null; } // unknown zone or old browser: the browser's own zone

  /** "GMT+08:00" -> "UTC+8", "GMT+05:30" -> "UTC+5:30", "GMT" -> "UTC" (as agent/timefmt.py). */
  function offsetLabel(gmt) {
    var m = /^GMT([+-])(\d{2}):?(\d{2})?$/.exec(gmt || "");
    if (!m || (m[2] === "00" && (!m[3] || m[3] === "00"))) return "UTC";
    var minutes = m[3] && m[3] !== "00" ? ":" + m[3] : "";
    return "UTC" + m[1] + String(parseInt(m[2], 10)) + minutes;
  }

  /** Date and time in the cafe's zone with the zone shown: YYYY-MM-DD HH:MM:SS UTC+8. */
  function stamp(ts) {
    if (ts === null || ts === undefined) return t("ui.never");
    var d = new Date(ts * 1000);
    if (!zoneParts) {
      var off = -d.getTimezoneOffset(), abs = Math.abs(off);
      var local = "GMT" + (off < 0 ? "-" : "+") + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60);
      return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
        pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " " +
        offsetLabel(off ? local : "GMT");
    }
    var p = {};
    zoneParts.formatToParts(d).forEach(function (part) { p[part.type] = part.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" +
      p.second + " " + offsetLabel(p.timeZoneName);
  }

  /** Message for an API error body ({code, message, params}) in the page's language. */
  function errorText(status, data) {
    if (data && data.error && typeof data.error === "object") data = data.error;
    // The API already translates (we send Accept-Language); fall back to our catalogue.
    if (data && typeof data.message === "string" && data.message) return data.message;
    if (data && data.code && Object.prototype.hasOwnProperty.call(catalogue, data.code)) {
      return t(data.code, data.params || {});
    }
    if (data && typeof data.detail === "string") return data.detail;
    if (status === 403) return t("permission_denied", {needed: t("role.operator")});
    if (status === 401) return t("ui.session_expired");
    return t("ui.request_failed", {status: status});
  }

  /** fetch() with the CSRF header, JSON in and out; resolves {status, data, ok}. */
  function api(method, url, payload, extraHeaders) {
    var headers = {"Accept": "application/json", "X-CSRF-Token": csrf,
                   "Accept-Language": lang === "en" ? "en" : "zh-CN"};
    var init = {method: method, headers: headers, credentials: "same-origin", cache: "no-store"};
    if (payload instanceof Blob) {
      headers["Content-Type"] = payload.type || "application/octet-stream";
      init.body = payload;
    } else if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    Object.keys(extraHeaders || {}).forEach(function (k) { headers[k] = extraHeaders[k]; });
    return fetch(url, init).then(function (response) {
      if (response.status === 401 && method === "GET") {
        window.location.assign("/ui/login?next=" + encodeURIComponent(location.pathname + location.search));
      }
      var type = response.headers.get("Content-Type") || "";
      var parse = type.indexOf("json") >= 0 ? response.json() : Promise.resolve(null);
      return parse.catch(function () { return null; }).then(function (data) {
        return {status: response.status, ok: response.ok, data: data, headers: response.headers};
      });
    }, function () {
      return {status: 0, ok: false, data: {message: t("ui.offline")}, headers: null};
    });
  }

  function verdictLabel(v) { return tOr("verdict." + v, v); }
  function powerLabel(p) { return p ? tOr("power." + p, p) : t("power.unknown"); }
  function bootLabel(dev) { return dev ? tOr("bootdev." + dev, dev) : t("ui.none"); }

  /** [css state, text] for DeepLink: freshness (fresh|stale|unknown), last result, rotation time, duplicates. */
  function deeplinkState(freshness, result, rotatedAt, duplicates) {
    if (duplicates) return ["failed", t("ui.dl_duplicate")];
    if (result && result !== "ok") return ["failed", t("ui.dl_failed")];
    if (freshness === "stale") return ["stale", t("ui.dl_stale")];
    if (freshness === "fresh" && rotatedAt) return ["fresh", t("ui.dl_fresh", {ago: ago(rotatedAt)})];
    if (freshness === "fresh") return ["fresh", t("ui.dl_no_boot")];
    return ["none", t("ui.dl_none")];
  }

  return {
    t: t, tOr: tOr, el: el, clear: clear, ago: ago, stamp: stamp, api: api,
    errorText: errorText, setServerNow: setServerNow, serverNow: serverNow, zone: zone,
    verdictLabel: verdictLabel,
    powerLabel: powerLabel, bootLabel: bootLabel, deeplinkState: deeplinkState,
    lang: lang, canAct: canAct, canImport: canImport, csrf: csrf
  };
})();
