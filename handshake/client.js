/* Handshake Prompt browser client, served by caddy-ahp's handshake_prompt
 * at {prefix}/client.js. No dependencies. It turns each <form> of the page
 * into a Handshake Prompt session on demand: a button creates the session
 * (schema from the inputs), shows the prompt to paste into an AI agent,
 * fills the fields the agent sets (firing input/change events so the
 * page's own scripts see them) and reports the user's own edits, which the
 * agent may then no longer overwrite. Opt a form out with data-hpp="off". */
(function () {
  "use strict";
  var CFG = /*HPP-CONFIG*/{"prefix":"/handshake","wsPrefix":"/ws/handshake"};
  if (window.HandshakePrompt) return;
  var SKIP = { hidden: 1, password: 1, file: 1, submit: 1, button: 1, reset: 1, image: 1 };
  var STOP = { "invalid token": 1, "session not found": 1, "session not found or expired": 1, "browser auth failed": 1 };
  var api = { sessions: [], start: start, version: 1 };
  window.HandshakePrompt = api;

  function text(el) { return (el && el.textContent || "").replace(/\s+/g, " ").trim(); }

  function labelOf(el) {
    if (el.labels && el.labels.length) return text(el.labels[0]);
    if (el.getAttribute("aria-label")) return el.getAttribute("aria-label");
    if (el.placeholder) return el.placeholder;
    return el.name;
  }

  // dict: a map with no inherited keys, so that a control named
  // "constructor" or "toString" is a key like any other.
  function dict() { return Object.create(null); }

  // Groups the form's named controls by name: one schema field each. A
  // disabled or readonly control is the page's (a computed price, an
  // account number): it is neither offered to the agent nor written.
  function collect(form) {
    var byName = dict(), order = [];
    for (var i = 0; i < form.elements.length; i++) {
      var el = form.elements[i], name = el.name;
      if (!name || locked(el) || el.getAttribute("data-hpp") === "off") continue;
      var tag = el.tagName.toLowerCase(), type = (el.type || "").toLowerCase();
      if (tag === "button" || tag === "fieldset" || tag === "output" || tag === "object") continue;
      if (tag === "input" && SKIP[type]) continue;
      var f = byName[name];
      if (!f) { f = byName[name] = { key: name, els: [], tag: tag, type: type }; order.push(f); }
      f.els.push(el);
    }
    for (var j = 0; j < order.length; j++) classify(order[j]);
    return order;
  }

  function locked(el) { return !!(el.disabled || el.readOnly); }

  // classify: a single checkbox is a yes/no whatever its value (checked,
  // the browser posts that value: agree=1, or the "0" of a hidden twin as
  // Rails pairs them); several boxes of one name are a list of values.
  function classify(f) {
    var el = f.els[0];
    f.kind = "string";
    if (f.tag === "select") f.kind = el.multiple ? "array<string>" : "enum";
    else if (f.type === "radio") f.kind = "enum";
    else if (f.type === "checkbox") f.kind = f.els.length === 1 ? "bool" : "array<string>";
    else if (f.type === "number" || f.type === "range") {
      var step = el.getAttribute("step");
      f.kind = (step && (step === "any" || step.indexOf(".") >= 0)) ? "float" : "int";
    } else if (f.type === "datetime-local") f.kind = "datetime";
  }

  function schemaOf(f) {
    var el = f.els[0], s = { key: f.key, label: labelOf(el), type: f.kind };
    for (var i = 0; i < f.els.length; i++) if (f.els[i].required) s.required = true;
    var opts = null;
    if (f.tag === "select") {
      opts = [];
      for (var j = 0; j < el.options.length; j++) {
        var o = el.options[j];
        if (o.disabled || (o.value === "" && !f.els[0].multiple)) continue;
        opts.push({ value: o.value, label: text(o) });
      }
    } else if (f.type === "radio" || (f.type === "checkbox" && f.kind !== "bool")) {
      opts = [];
      for (var k = 0; k < f.els.length; k++) opts.push({ value: f.els[k].value, label: labelOf(f.els[k]) });
    }
    if (opts) s.options = opts;
    if (f.type === "date") s.desc = "a date, YYYY-MM-DD";
    else if (f.type === "time") s.desc = "a time, HH:MM";
    else if (f.type === "email") s.desc = "an email address";
    else if (f.kind === "datetime") s.desc = "local date and time, YYYY-MM-DDTHH:MM:SS";
    else if (f.kind === "int" || f.kind === "float") {
      // The page will not submit a number past its min or max: the
      // server refuses such a value, so the agent learns it at once.
      var lo = num(el.getAttribute("min")), hi = num(el.getAttribute("max"));
      if (lo !== null) s.min = lo;
      if (hi !== null) s.max = hi;
      s.desc = (f.kind === "int" ? "a whole number" : "a number") + (lo !== null && hi !== null ? " from " + lo + " to " + hi :
        lo !== null ? ", at least " + lo : hi !== null ? ", at most " + hi : "");
    }
    if (el.placeholder && f.kind !== "enum") s.example = el.placeholder;
    if (el.maxLength > 0) s.maxLength = el.maxLength;
    return s;
  }

  function num(a) {
    if (a === null || a === "") return null;
    var n = Number(a);
    return isFinite(n) ? n : null;
  }

  function read(f) {
    var el = f.els[0], i, out;
    if (f.tag === "select" && el.multiple) {
      out = [];
      for (i = 0; i < el.options.length; i++) if (el.options[i].selected) out.push(el.options[i].value);
      return out;
    }
    if (f.type === "radio") {
      for (i = 0; i < f.els.length; i++) if (f.els[i].checked) return f.els[i].value;
      return null;
    }
    if (f.type === "checkbox") {
      if (f.kind === "bool") return !!el.checked;
      out = [];
      for (i = 0; i < f.els.length; i++) if (f.els[i].checked) out.push(f.els[i].value);
      return out;
    }
    if (f.kind === "int" || f.kind === "float") {
      if (el.value === "") return null;
      var n = Number(el.value);
      return isNaN(n) ? el.value : n;
    }
    return el.value;
  }

  // pristine: the field shows what the page itself put there (its default
  // value, checked state or selected option), not something the user chose.
  function pristine(f) {
    for (var i = 0; i < f.els.length; i++) {
      var el = f.els[i];
      if (f.tag === "select") {
        var anyDefault = false, j;
        for (j = 0; j < el.options.length; j++) if (el.options[j].defaultSelected) anyDefault = true;
        for (j = 0; j < el.options.length; j++) {
          var def = anyDefault ? el.options[j].defaultSelected : (j === 0 && !el.multiple);
          if (el.options[j].selected !== def) return false;
        }
      } else if (f.type === "checkbox" || f.type === "radio") {
        if (el.checked !== el.defaultChecked) return false;
      } else if (el.value !== el.defaultValue) return false;
    }
    return true;
  }

  function fire(el) {
    el.dispatchEvent(new Event("input", { bubbles: true }));
    el.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // write sets the agent's value v in field f. It returns false when the
  // browser dropped it (an invalid date, time or number reads as ""): the
  // session still holds the agent's value (see docs/handshake-prompt.md).
  function write(st, f, v) {
    var el = f.els[0], i, list, s, held = true;
    // The page may have locked the field since the session started.
    for (i = 0; i < f.els.length; i++) if (locked(f.els[i])) return true;
    var plain = !((f.tag === "select" && el.multiple) || f.type === "radio" || f.type === "checkbox");
    if (plain) {
      s = v === null || v === undefined ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v));
      if (f.type === "datetime-local") s = s.replace(" ", "T").replace(/(Z|[+-]\d\d:?\d\d)$/, "").slice(0, 23);
      // A script-set value escapes maxlength (checkValidity stays true and
      // the form submits it): refuse it, as the server does, rather than
      // cut it to something the agent did not say.
      if (el.maxLength > 0 && s.length > el.maxLength) return true;
    }
    st.applying = true;
    try {
      if (f.tag === "select" && el.multiple) {
        list = toList(v);
        for (i = 0; i < el.options.length; i++) el.options[i].selected = list.indexOf(el.options[i].value) >= 0;
        fire(el);
      } else if (f.type === "radio") {
        for (i = 0; i < f.els.length; i++) {
          var on = v !== null && v !== undefined && f.els[i].value === String(v);
          if (f.els[i].checked !== on) { f.els[i].checked = on; if (on) fire(f.els[i]); }
        }
      } else if (f.type === "checkbox") {
        list = f.kind === "bool" ? null : toList(v);
        for (i = 0; i < f.els.length; i++) {
          var c = list ? list.indexOf(f.els[i].value) >= 0 : (v === true || v === "true" || v === 1 || v === "on");
          if (f.els[i].checked !== c) { f.els[i].checked = c; fire(f.els[i]); }
        }
      } else {
        el.value = s;
        held = s === "" || el.value !== "";
        fire(el);
      }
      for (i = 0; i < f.els.length; i++) flash(f.els[i]);
    } finally {
      st.applying = false;
    }
    return held;
  }

  function toList(v) {
    if (Array.isArray(v)) return v.map(String);
    return v === null || v === undefined || v === "" ? [] : [String(v)];
  }

  function flash(el) {
    el.classList.add("hpp-filled");
    setTimeout(function () { el.classList.remove("hpp-filled"); }, 1200);
  }

  function style() {
    if (document.getElementById("hpp-style")) return;
    var css = ".hpp-bar{margin:.5em 0;font:14px system-ui,sans-serif}" +
      ".hpp-bar button{padding:.4em .9em;border:1px solid #888;border-radius:6px;background:#fff;cursor:pointer}" +
      ".hpp-panel{margin:.5em 0;padding:.75em;border:1px solid #ccc;border-radius:6px;background:#fafafa}" +
      ".hpp-prompt{white-space:pre-wrap;word-break:break-all;max-height:16em;overflow:auto;font-size:12px;background:#fff;padding:.5em;border:1px solid #ddd}" +
      ".hpp-status{color:#555;font-size:12px;margin-top:.4em}" +
      ".hpp-filled{outline:2px solid #fb8500;transition:outline .3s}";
    var el = document.createElement("style");
    el.id = "hpp-style";
    el.textContent = css;
    document.head.appendChild(el);
  }

  function setup(form) {
    if (form.__hpp || form.getAttribute("data-hpp") === "off" || form.getAttribute("role") === "search") return;
    var fs = collect(form);
    if (!fs.length) return;
    style();
    // mine: keys the user has typed in (the agent may not write them);
    // got: action frames since the last done (cleared: those with null,
    // the agent taking a value back; the done counts them as applied);
    // seq/seen: the order of the
    // action frames per key, so a context read never undoes a newer frame.
    // bad: keys of this batch whose value the form would not hold or send.
    // agents: keys whose value the agent wrote and the user has not typed over.
    var st = { form: form, fields: null, byKey: null, timers: dict(), applying: false, ws: null, stopped: false,
      mine: dict(), got: 0, cleared: 0, seq: 0, seen: dict(), syncing: false, again: false, connects: 0, unsure: false, bad: [],
      agents: dict(), creating: null };
    use(st, fs);
    form.__hpp = st;
    var bar = document.createElement("div");
    bar.className = "hpp-bar";
    var btn = document.createElement("button");
    btn.type = "button";
    btn.className = "hpp-start";
    btn.textContent = "Fill this form with your AI agent";
    btn.addEventListener("click", function () { start(form); });
    bar.appendChild(btn);
    form.parentNode.insertBefore(bar, form);
    st.bar = bar;
    form.addEventListener("input", function (e) { edited(st, e.target); }, true);
    form.addEventListener("change", function (e) { edited(st, e.target); }, true);
    resume(st);
  }

  // A reload keeps the tab's session. Its create answer (id, token, URLs,
  // prompt) is kept in sessionStorage, which is this tab's alone and ends
  // with it, under the page and the form; a reload reads the
  // session and fills the form from it, the visitor's own values included
  // (a browser does not always restore them), and reconnects. Without
  // this, an agent went on filling a session no page showed.
  function storeKey(st) {
    var f = st.form, n = Array.prototype.indexOf.call(document.forms, f);
    return "hpp:" + location.pathname + ":" + n + ":" + (f.id || f.getAttribute("name") || f.getAttribute("action") || "");
  }

  function keep(st, s) {
    try { sessionStorage.setItem(storeKey(st), JSON.stringify(s)); } catch (e) { /* storage off or full */ }
  }

  function forget(st) {
    try { sessionStorage.removeItem(storeKey(st)); } catch (e) { /* storage off */ }
  }

  function resume(st) {
    var s;
    try { s = JSON.parse(sessionStorage.getItem(storeKey(st)) || "null"); } catch (e) { s = null; }
    if (!s || typeof s.sessionId !== "string" || typeof s.token !== "string") return;
    // (start waits for this read: a click meanwhile makes no second session;
    // what the visitor types meanwhile is theirs, reported once it is read)
    st.resuming = dict();
    st.creating = readContext(s).then(function (d) {
      st.creating = null;
      var ctx = d && d.context || {}, typed = st.resuming;
      st.resuming = null;
      for (var k in ctx) {
        var e = ctx[k], f = st.byKey[k];
        if (!Object.prototype.hasOwnProperty.call(ctx, k) || !f || !e || typed[k]) continue;
        if (e.by === "user" || e.by === "user_edit") {
          st.mine[k] = true;
          if (!same(f, e.value)) write(st, f, e.value);
        } else if (!pristine(f) && !same(f, e.value)) {
          // Neither the page's default nor the session's value: typed
          // before the reload and not reported in time, which the
          // browser restored. The visitor's.
          typed[k] = true;
        } else if (e.by === "ai") agentSet(st, k, e.value, true);
      }
      st.session = s;
      // The server replays the agent's values on the first socket: its
      // frames are not the next batch's (see connect).
      st.connects = 1;
      api.sessions.push(s);
      panel(st, s);
      connect(st, 0);
      for (var t in typed) {
        if (st.byKey[t]) { st.mine[t] = true; report(st, st.byKey[t]); }
      }
      return s;
    }, function (err) {
      // Ended, expired or refused: the button starts a new one. A network
      // error keeps the entry for the next load.
      st.creating = null;
      st.resuming = null;
      if (STOP[err.message]) forget(st);
      return null;
    });
  }

  function use(st, fs) {
    st.fields = fs;
    st.byKey = dict();
    for (var i = 0; i < fs.length; i++) st.byKey[fs[i].key] = fs[i];
  }

  function status(st, msg) { if (st.status) st.status.textContent = msg; }

  // start creates a session for form and shows its prompt. It resolves
  // with the session (the create answer).
  function start(form) {
    var st = form.__hpp;
    if (!st) { setup(form); st = form.__hpp; }
    if (!st) return Promise.reject(new Error("form has no fields to fill"));
    if (st.session && !st.stopped) return Promise.resolve(st.session);
    // A double click makes one session; a click while a reload's session
    // is read gets that one, or a new one if it has ended.
    if (st.creating) return st.creating.then(function (s) { return s || start(form); });
    var agents = dict();
    if (st.stopped) {
      // The last session ended (expired, or its token refused): a click
      // starts a new one. Fields the user typed stay theirs; values the
      // last session's agent wrote start empty, for the new agent to
      // correct, and every verdict of the old session is dropped.
      if (st.ws) st.ws.close(1000, "new session");
      agents = st.agents;
      for (var t in st.timers) clearTimeout(st.timers[t]);
      st.session = null; st.stopped = false; st.got = 0; st.unsure = false; st.connects = 0; st.bad = [];
      st.mine = dict(); st.agents = dict(); st.timers = dict(); st.syncing = false; st.again = false;
    }
    // The page's scripts may have added, removed or locked fields since
    // load: the session gets the form as it is now.
    use(st, collect(form));
    if (!st.fields.length) return Promise.reject(new Error("form has no fields to fill"));
    var schema = [], context = dict();
    for (var i = 0; i < st.fields.length; i++) {
      var f = st.fields[i], sf = schemaOf(f), v = read(f);
      // The protocol makes every non-empty initial value the user's, which
      // the agent may not overwrite. A value the page put there (an
      // unchecked box, a preselected option, a prefilled input) is not the
      // user's choice: it goes to the schema as "default", and the field
      // starts empty for the agent to fill.
      if (agents[f.key]) v = null;
      else if (pristine(f)) {
        if (v !== null && v !== "" && v !== false && !(Array.isArray(v) && !v.length)) sf["default"] = v;
        v = null;
      } else st.mine[f.key] = true;
      schema.push(sf);
      context[f.key] = v;
    }
    var body = { mode: "form-fill", schema: schema, context: context,
      meta: { page: location.pathname, title: document.title } };
    st.creating = fetch(CFG.prefix + "/session", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().then(function (data) {
        if (!res.ok) throw new Error(data && data.error || ("HTTP " + res.status));
        return data;
      });
    }).then(function (s) {
      st.creating = null;
      st.session = s;
      st.bad = [];
      api.sessions.push(s);
      keep(st, s);
      panel(st, s);
      connect(st, 0);
      return s;
    }, function (err) {
      st.creating = null;
      panel(st, null);
      status(st, "Could not start: " + err.message);
      throw err;
    });
    return st.creating;
  }

  function panel(st, s) {
    if (!st.panel) {
      var p = document.createElement("div");
      p.className = "hpp-panel";
      var intro = document.createElement("div");
      intro.textContent = "Copy this prompt into your AI agent, then tell it what to fill in. Fields you type yourself stay yours.";
      var pre = document.createElement("pre");
      pre.className = "hpp-prompt";
      var copy = document.createElement("button");
      copy.type = "button";
      copy.className = "hpp-copy";
      copy.textContent = "Copy prompt";
      copy.addEventListener("click", function () {
        var t = pre.textContent;
        var done = function () { status(st, "Prompt copied. Paste it into your agent."); };
        if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(t).then(done, function () { select(pre); });
        else select(pre);
      });
      var stat = document.createElement("div");
      stat.className = "hpp-status";
      p.appendChild(intro); p.appendChild(pre); p.appendChild(copy); p.appendChild(stat);
      st.bar.appendChild(p);
      st.panel = p; st.pre = pre; st.status = stat; st.copy = copy;
    }
    if (s) {
      st.pre.textContent = s.prompt || ("sessionId: " + s.sessionId + "\ntoken: " + s.token + "\nbaseUrl: " + location.origin);
      st.copy.disabled = false;
    }
  }

  // stop ends the page's part in a session the server ended: its prompt
  // can no longer be used, so it is taken away, and the button makes a
  // new one.
  function stop(st, why) {
    st.stopped = true;
    forget(st);
    if (st.pre) st.pre.textContent = "";
    if (st.copy) st.copy.disabled = true;
    status(st, "Session ended: " + why + ". Click “Fill this form with your AI agent” for a new prompt.");
  }

  // invalid is the browser's reason a field will not submit the agent's
  // value (past min or max, not an email …), or "". It reads validity:
  // checkValidity() would fire the page's "invalid" handlers. A field the
  // user owns is not the agent's to judge.
  function invalid(st, key) {
    var f = st.byKey[key];
    if (!f || st.mine[key]) return "";
    for (var i = 0; i < f.els.length; i++) {
      var el = f.els[i];
      if (el.willValidate && el.validity && !el.validity.valid && !el.validity.valueMissing) return el.validationMessage || "not valid";
    }
    return "";
  }

  // applied shows the agent's value for key and tells the visitor how it
  // went; a value the field cannot hold or submit is listed for the
  // batch's done.
  function applied(st, key, v) {
    // (a later value for the same key replaces the verdict on an earlier one)
    st.bad = st.bad.filter(function (k) { return k !== key; });
    if (v === null) {
      // null clears the field: nothing the form could refuse.
      agentSet(st, key, v, false);
      status(st, "Your agent cleared “" + key + "”.");
      return;
    }
    if (!agentSet(st, key, v, false)) {
      st.bad.push(key);
      status(st, "Your agent's value for “" + key + "” is not valid in this field: left empty.");
      return;
    }
    var why = invalid(st, key);
    if (why) {
      st.bad.push(key);
      status(st, "Your agent filled “" + key + "”, but the form will not send it: " + why);
    } else status(st, "Your agent filled “" + key + "”.");
  }

  function select(el) {
    var r = document.createRange();
    r.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(r);
  }

  function connect(st, attempt) {
    if (st.stopped) return;
    var s = st.session;
    if (!s) return;
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + s.wsUrl + "?token=" + encodeURIComponent(s.token);
    var ws = new WebSocket(url), opened = false;
    st.ws = ws;
    ws.onmessage = function (e) {
      var m;
      try { m = JSON.parse(e.data); } catch (x) { return; }
      if (m.type === "connected") {
        opened = true; attempt = 0; status(st, "Waiting for your agent…");
        // After a reconnection the server replays the agent's values as
        // action frames, which the next done does not count.
        st.got = 0; st.cleared = 0; st.unsure = st.connects++ > 0;
      } else if (m.type === "action") {
        st.got++;
        if (m.value === null) st.cleared++;
        st.seen[m.key] = ++st.seq;
        applied(st, m.key, m.value);
      } else if (m.type === "done") {
        // An agent that posts with "stream": false (the SDK's --no-stream)
        // sends the page no action frames, only this count: read the
        // values from the session instead.
        if (m.applied > 0 && (st.unsure || m.applied > st.got)) resync(st);
        // Clears are told apart from fills by the done's own count (this
        // server's); from another server, as their frames came: after a
        // reconnection the replayed frames are not this batch's, and a
        // batch without frames tells no clears, so both count as filled.
        var cleared = typeof m.cleared === "number" ? Math.min(m.cleared, m.applied) :
          st.unsure ? 0 : Math.min(st.cleared, m.applied), filled = m.applied - cleared;
        st.got = 0; st.cleared = 0; st.unsure = false;
        var bad = st.bad;
        st.bad = [];
        var todo = bad.length || (m.missing && m.missing.length);
        status(st, (cleared && !filled ? "Your agent cleared " + cleared + " field(s)" :
          "Your agent filled " + filled + " field(s)" + (cleared ? " and cleared " + cleared : "")) +
          (bad.length ? "; not accepted by the form, please check: " + bad.join(", ") : "") +
          (m.rejected && m.rejected.length ? "; kept yours: " + m.rejected.join(", ") : "") +
          (m.missing && m.missing.length ? "; still missing: " + m.missing.join(", ") : "") +
          (todo ? "." : ". Review the form and send it."));
      } else if (m.type === "extended") status(st, "Session extended.");
      else if (m.type === "error") {
        if (STOP[m.msg]) stop(st, m.msg);
        else status(st, "Session error: " + m.msg);
      }
    };
    ws.onclose = function () {
      if (st.ws === ws) st.ws = null;
      if (st.stopped || st.session !== s) return;
      var wait = Math.min(30000, 500 * Math.pow(2, attempt));
      // (a click may have started another session meanwhile)
      var again = function () { setTimeout(function () { if (st.session === s) connect(st, attempt + 1); }, wait); };
      if (opened) { again(); return; }
      // The upgrade was refused: the server checks the session, the token
      // and the caps before accepting, and a browser cannot read why. A
      // plain GET of the same URL gets the same checks and says it.
      fetch(url.replace(/^ws/, "http"), { credentials: "same-origin", cache: "no-store" })
        .then(function (res) { return res.json().catch(function () { return {}; }); })
        .then(function (d) {
          if (d && STOP[d.error]) { if (st.session === s) stop(st, d.error); return; }
          again();
        }, again);
    };
  }

  // agentSet applies the agent's value for key unless the user has typed
  // in that field: the server refuses the agent such a field once the
  // user's edit arrives, and an edit still on its way (the report waits
  // 200 ms) would otherwise send the agent's value back as the user's.
  // It returns false when the field could not hold v (see write).
  function agentSet(st, key, v, lazy) {
    var f = st.byKey[key];
    if (!f || st.mine[key] || (lazy && same(f, v))) return true;
    st.agents[key] = true;
    return write(st, f, v);
  }

  // same: the field already shows v (a context read rewrites only what
  // changed, so the page's listeners see no repeated events).
  function same(f, v) {
    var cur = read(f);
    if (Array.isArray(cur)) return JSON.stringify(cur) === JSON.stringify(toList(v));
    if (typeof cur === "boolean") return cur === (v === true || v === "true" || v === 1 || v === "on");
    return String(cur === null ? "" : cur) === (v === null || v === undefined ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)));
  }

  // readContext reads session s's context with its token (the agent's
  // GET); it rejects with the server's error message.
  function readContext(s) {
    return fetch(s.contextUrl || (CFG.prefix + "/context/" + s.sessionId), {
      credentials: "same-origin", cache: "no-store", headers: { "X-Handshake-Token": s.token }
    }).then(function (res) {
      return res.json().then(function (d) {
        if (!res.ok) throw new Error(d && d.error || ("HTTP " + res.status));
        return d;
      });
    });
  }

  // resync reads the session's context (the agent's own GET, with the
  // page's token) and applies the agent's values. One read at a time; a
  // done that arrives meanwhile asks for one more. If the read fails (the
  // session's rate limit, a network error) the socket is closed instead:
  // it reconnects, and the server replays the agent's values on it.
  function resync(st) {
    if (st.syncing) { st.again = true; return; }
    st.syncing = true; st.again = false;
    var s = st.session, from = st.seq;
    readContext(s).then(function (d) {
      if (st.session !== s) return; // a read of a session that has ended
      var ctx = d && d.context || {}, bad = [];
      for (var k in ctx) {
        var e = ctx[k];
        // only the agent's values, and none an action frame has since replaced
        if (Object.prototype.hasOwnProperty.call(ctx, k) && e && e.by === "ai" && !(st.seen[k] > from)) {
          if (!agentSet(st, k, e.value, true) || invalid(st, k)) bad.push(k);
        }
      }
      // A batch without action frames was counted by its done already:
      // what the form would not take is added to what it said.
      if (bad.length && st.status) {
        status(st, st.status.textContent.replace(/\. Review the form and send it\.$/, ".") +
          " Not accepted by the form, please check: " + bad.join(", ") + ".");
      }
    }, function (err) {
      if (st.session !== s) return;
      if (STOP[err.message]) stop(st, err.message);
      if (st.ws) st.ws.close(4000, "resync");
    }).then(function () {
      if (st.session !== s) return;
      st.syncing = false;
      if (st.again && !st.stopped) resync(st);
    });
  }

  function edited(st, el) {
    if (st.applying || !el || !el.name) return;
    var f = st.byKey[el.name];
    if (!f) return;
    if (!st.session) {
      if (st.resuming) st.resuming[f.key] = true; // reported once the session is read
      return;
    }
    st.mine[f.key] = true;
    delete st.agents[f.key];
    clearTimeout(st.timers[f.key]);
    st.timers[f.key] = setTimeout(function () { report(st, f); }, 200);
  }

  function report(st, f) {
    var msg = { type: "userEdit", key: f.key, value: read(f) };
    if (st.ws && st.ws.readyState === 1) { st.ws.send(JSON.stringify(msg)); return; }
    fetch(st.session.notifyUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key: msg.key, value: msg.value })
    }).catch(function () {});
  }

  function init() {
    var forms = document.forms;
    for (var i = 0; i < forms.length; i++) {
      try { setup(forms[i]); } catch (e) { /* never break the page */ }
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
