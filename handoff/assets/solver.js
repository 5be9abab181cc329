/*
 * Agent Handoff proof-of-work solver (served by caddy-ahp's agent_handoff).
 *
 * The proof of work of docs/agent-handoff.md: the smallest decimal nonce,
 * counting from 0, such that SHA-256(challenge + nonce) has at least
 * `difficulty` leading zero bits. Hashing runs in a Web Worker (this same
 * file) with WebCrypto, so the page stays responsive.
 *
 * In a page:
 *   <script src="/.well-known/agent-access/solver.js" defer></script>
 *   AgentHandoff.solve(challenge, difficulty) -> Promise<nonce>
 * or, with no script of your own, a claim form:
 *   <form data-agent-handoff-claim action="/v1/claims/verify" data-success="/welcome">
 *     <input name="code" required autocomplete="off"> <button>Claim</button>
 *     <output data-agent-handoff-status></output>
 *   </form>
 * On submit it fetches a claim challenge (data-challenge, default
 * /.well-known/agent-access/claim-challenge), solves it and posts
 * {"code", "proof_of_work": {"challenge", "nonce"}} as JSON; on success it
 * goes to data-success (a path on this site) or says so in the output.
 */
(function (self) {
  'use strict';

  // Leading zero bits of a digest, most significant bit of byte 0 first.
  function leadingZeroBits(bytes) {
    var n = 0;
    for (var i = 0; i < bytes.length; i++) {
      var b = bytes[i];
      if (b === 0) { n += 8; continue; }
      return n + Math.clz32(b) - 24;
    }
    return n;
  }

  var BATCH = 512; // digests in flight at once

  async function solve(challenge, difficulty, start, progress) {
    var subtle = self.crypto.subtle;
    var enc = new TextEncoder();
    for (var base = start || 0; base < Number.MAX_SAFE_INTEGER; base += BATCH) {
      var pending = new Array(BATCH);
      for (var i = 0; i < BATCH; i++) {
        pending[i] = subtle.digest('SHA-256', enc.encode(challenge + String(base + i)));
      }
      var digests = await Promise.all(pending);
      for (var j = 0; j < BATCH; j++) {
        if (leadingZeroBits(new Uint8Array(digests[j])) >= difficulty) return String(base + j);
      }
      if (progress) progress(base + BATCH);
    }
    throw new Error('no nonce found');
  }

  // Worker side: {challenge, difficulty, start} in, {nonce} or {error} out.
  if (typeof self.document === 'undefined') {
    self.onmessage = function (e) {
      var d = e.data || {};
      var last = 0;
      solve(String(d.challenge), Number(d.difficulty), Number(d.start) || 0, function (tried) {
        if (tried - last >= 65536) { last = tried; self.postMessage({ tried: tried }); }
      }).then(function (nonce) {
        self.postMessage({ nonce: nonce });
      }, function (err) {
        self.postMessage({ error: String(err && err.message || err) });
      });
    };
    return;
  }

  // Page side.
  var script = self.document.currentScript;
  var workerURL = script && script.src;

  function solveInWorker(challenge, difficulty, onProgress) {
    return new Promise(function (resolve, reject) {
      var w = new Worker(workerURL);
      w.onmessage = function (e) {
        if (e.data.tried !== undefined) { if (onProgress) onProgress(e.data.tried); return; }
        w.terminate();
        if (e.data.nonce !== undefined) resolve(e.data.nonce); else reject(new Error(e.data.error));
      };
      w.onerror = function (e) { w.terminate(); reject(new Error(e.message || 'worker failed')); };
      w.postMessage({ challenge: challenge, difficulty: difficulty });
    });
  }

  // Only paths on this site are followed after a claim (spec §21).
  function localPath(p) {
    return typeof p === 'string' && p.charAt(0) === '/' && p.charAt(1) !== '/' && p.charAt(1) !== '\\';
  }

  function wire(form) {
    var status = form.querySelector('[data-agent-handoff-status]');
    function say(text) { if (status) status.textContent = text; }
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var button = form.querySelector('button, input[type=submit]');
      if (button) button.disabled = true;
      try {
        var code = (form.elements.code && form.elements.code.value || '').trim();
        say('Getting a challenge…');
        var cr = await fetch(form.getAttribute('data-challenge') || '/.well-known/agent-access/claim-challenge',
          { credentials: 'same-origin', cache: 'no-store' });
        if (!cr.ok) throw new Error('challenge');
        var ch = await cr.json();
        say('Working (difficulty ' + ch.difficulty + ')…');
        var nonce = await solveInWorker(ch.challenge, ch.difficulty);
        say('Verifying…');
        var vr = await fetch(form.action, {
          method: 'POST', credentials: 'same-origin', cache: 'no-store',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ code: code, proof_of_work: { challenge: ch.challenge, nonce: nonce } })
        });
        var detail = null;
        try { detail = await vr.json(); } catch (e) { /* not JSON */ }
        if (!vr.ok) {
          say('That did not work: the code is unknown, expired or already used, or too many attempts were made. Check it and try again later.');
          form.dispatchEvent(new CustomEvent('agent-handoff:failed', { detail: detail }));
          return;
        }
        form.dispatchEvent(new CustomEvent('agent-handoff:claimed', { detail: detail }));
        var next = form.getAttribute('data-success');
        if (localPath(next)) { self.location.assign(next); } else { say('Claimed.'); }
      } catch (e) {
        say('Something went wrong; try again.');
      } finally {
        if (button) button.disabled = false;
      }
    });
  }

  self.AgentHandoff = {
    solve: solveInWorker,
    leadingZeroBits: leadingZeroBits
  };
  function init() {
    var forms = self.document.querySelectorAll('form[data-agent-handoff-claim]');
    for (var i = 0; i < forms.length; i++) wire(forms[i]);
  }
  if (self.document.readyState === 'loading') self.document.addEventListener('DOMContentLoaded', init); else init();
})(self);
