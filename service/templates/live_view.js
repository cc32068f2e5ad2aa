"use strict";
// The live view's one script: ask for a read token once, keep it in this tab's sessionStorage, and fetch the
// status fragment with it as a Bearer header every few seconds. The token never goes into a URL or a cookie.
(function () {
  const KEY = "conductor-read-token";
  const live = document.getElementById("live");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  const notice = document.getElementById("notice");
  const plans = document.getElementById("plans");
  const every = Number(live.dataset.refreshMs) || 3000;
  let timer = null;
  let generation = 0;

  function ask(message) {
    sessionStorage.removeItem(KEY);
    notice.textContent = message;
    form.hidden = false;
    input.focus();
  }

  async function refresh(mine) {
    const token = sessionStorage.getItem(KEY);
    if (!token) {
      ask("");
      return;
    }
    try {
      const response = await fetch(live.dataset.statusUrl, {
        headers: { Authorization: "Bearer " + token },
        cache: "no-store",
        credentials: "omit",
      });
      if (mine !== generation) {
        return; // a newer token was entered meanwhile
      }
      if (response.status === 401) {
        plans.replaceChildren();
        ask("That token was refused: enter a read token (CONDUCTOR_READ_TOKENS).");
        return;
      }
      if (response.status === 403) {
        plans.replaceChildren();
        ask("The read API is off: no read token is configured (CONDUCTOR_READ_TOKENS).");
        return;
      }
      if (response.ok) {
        // Rendered by the intake with every value escaped; the page's policy runs no script in it anyway.
        plans.innerHTML = await response.text();
        form.hidden = true;
        notice.textContent = "";
      } else {
        notice.textContent = "The intake answered " + response.status + "; trying again.";
      }
    } catch (error) {
      if (mine !== generation) {
        return;
      }
      notice.textContent = "The intake did not answer; trying again.";
    }
    timer = setTimeout(function () { refresh(mine); }, every);
  }

  function start() {
    clearTimeout(timer);
    generation += 1;
    refresh(generation);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const token = input.value.trim();
    input.value = "";
    if (token) {
      sessionStorage.setItem(KEY, token);
      start();
    }
  });
  start();
})();
