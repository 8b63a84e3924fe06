// Start-up, sign-in and the role's screens. Screens follow GET /v1/me: the console never
// offers what the key cannot do (the service enforces it anyway).
import { apiKey, forgetChips, get, setApiKey, whenUnauthorized } from "./api.js";
import { el } from "./dom.js";
import { label, preferredLanguage, setLanguage, translate } from "./i18n.js";
import { EnrollScreen } from "./enroll.js";
import { OpsScreen } from "./ops.js";
import { ReviewsScreen } from "./reviews.js";
import { errorBox, setFieldError } from "./ui.js";
import { VerifyScreen } from "./verify.js";

const SCREENS_BY_ROLE = {
  clerk: ["enroll"],
  officer: ["verify"],
  supervisor: ["reviews"],
  ops: ["ops"],
  admin: [],
};
const SCREEN_CLASSES = { enroll: EnrollScreen, verify: VerifyScreen, reviews: ReviewsScreen, ops: OpsScreen };

const $ = (id) => document.getElementById(id);
const screens = {};
let me = null;
let activeName = null;

function screenOf(name) {
  if (!screens[name]) screens[name] = new SCREEN_CLASSES[name]();
  return screens[name];
}

function showOnly(sectionId) {
  for (const section of document.querySelectorAll("main > .screen")) section.hidden = section.id !== sectionId;
}

async function open(name) {
  if (activeName && activeName !== name) screenOf(activeName).leave();
  activeName = name;
  showOnly(`screen-${name}`);
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.screen === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  await screenOf(name).enter();
}

function allowedScreens() {
  return me ? SCREENS_BY_ROLE[me.role] || [] : [];
}

async function route() {
  if (!me) return;
  const allowed = allowedScreens();
  if (!allowed.length) {
    if (activeName) screenOf(activeName).leave();
    activeName = null;
    return showOnly("screen-none");
  }
  const wanted = location.hash.replace(/^#/, "");
  await open(allowed.includes(wanted) ? wanted : allowed[0]);
}

function signedIn(identity) {
  me = identity;
  const nav = $("nav");
  nav.replaceChildren(
    ...allowedScreens().map((name) => el("a", { href: `#${name}`, "data-screen": name, i18n: `nav.${name}` })),
  );
  nav.hidden = allowedScreens().length < 1;
  const station = $("station");
  station.replaceChildren(
    el("span", { class: "station-name", text: identity.name || identity.key_id }),
    " · ",
    el("span", { class: "station-role", i18n: `role.${identity.role}` }),
  );
  station.dataset.role = identity.role;
  station.hidden = false;
  $("sign-out").hidden = false;
  document.body.dataset.role = identity.role;
  route();
}

function signOut(messageKey) {
  if (activeName) screenOf(activeName).leave();
  activeName = null;
  me = null;
  setApiKey(null);
  forgetChips();
  $("nav").hidden = true;
  $("station").hidden = true;
  $("sign-out").hidden = true;
  delete document.body.dataset.role;
  showOnly("screen-signin");
  const error = $("api-key-error");
  if (messageKey) {
    label(error, messageKey);
    error.hidden = false;
  }
  $("api-key").value = "";
  $("api-key").focus();
}

async function signIn(key) {
  setApiKey(key);
  const identity = await get("me");
  $("api-key").value = "";
  setFieldError($("api-key"), null);
  signedIn(identity);
}

async function start() {
  const language = $("language");
  await setLanguage(preferredLanguage());
  language.value = document.documentElement.lang;
  language.addEventListener("change", () => setLanguage(language.value));

  whenUnauthorized(() => {
    if (me) signOut("signin.expired");
  });
  $("sign-out").addEventListener("click", () => signOut(null));
  window.addEventListener("hashchange", route);

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("api-key");
    const key = input.value.trim();
    if (!key) {
      setFieldError(input, "validation.required");
      return input.focus();
    }
    try {
      await signIn(key);
    } catch (error) {
      setApiKey(null);
      const message = $("api-key-error");
      if (error.status === 401) {
        setFieldError(input, "signin.rejected");
      } else {
        message.replaceChildren(errorBox(error));
        message.hidden = false;
      }
      input.focus();
    }
  });

  if (apiKey()) {
    try {
      signedIn(await get("me"));
      return;
    } catch {
      setApiKey(null);
    }
  }
  showOnly("screen-signin");
  $("api-key").focus();
}

start().catch((error) => {
  console.error(error);
  const status = $("global-status");
  status.textContent = "Wajah console failed to start / Konsol Wajah gagal dimulai.";
  translate(status);
});
