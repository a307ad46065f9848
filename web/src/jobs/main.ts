import { IssueTokenDocument, SluiceClient, SluiceRequestError } from '../../../src/sdk/client';
import { app, currentRoute, fail, loadSpecs, messageOf, navigate, onRoute, onSignOut, signOut, startJobFeed, stopJobFeed, type Route } from './app';
import { initDirectoryScreen } from './directory.screen';
import { $, flash } from './dom';
import { initImportScreen, showImportScreen } from './import.screen';
import { closeJob, CURRENT_FILE_KEY, initJobScreen, openFile, openJob, rememberedJob } from './job.screen';
import { initJobsScreen, showJobsScreen } from './jobs.screen';
import { initRecent, loadRecent } from './recent';
import { clearSession, loadSession, saveSession } from './session';
import { initSkillsScreen, showSkillsScreen } from './skills.screen';

/**
 * The jobs page: sign in, then four tabs (Import a CSV, Jobs, Directory, Skills) and the job card
 * they share. The open job is kept in the URL (`?file=` or `?job=`) and localStorage, so a reload
 * resumes it; `?view=` names the tab.
 */

const VIEWS = ['import', 'jobs', 'directory', 'skills'] as const;
const SECTIONS: Record<string, string[]> = { import: ['upload', 'queue-wrap', 'recent'], jobs: ['jobs'], directory: ['directory'], skills: ['ce', 'skills'] };
let started = false;

function showSignedIn(): void {
  const s = app.session!;
  app.client = new SluiceClient({ url: window.location.origin, token: s.token });
  $('signin').hidden = true;
  $('tabs').hidden = false;
  $('who').hidden = false;
  $('who').textContent = `${s.clientId} (${s.roles.join(', ')})`;
  $('signout').hidden = false;
}

onSignOut((message) => {
  closeJob();
  stopJobFeed();
  void app.client?.close();
  app.client = undefined;
  app.session = undefined;
  started = false;
  clearSession();
  for (const id of ['tabs', 'who', 'signout', ...Object.values(SECTIONS).flat()]) $(id).hidden = true;
  $('signin').hidden = false;
  flash(message);
});

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target as HTMLFormElement);
  try {
    const anon = new SluiceClient({ url: window.location.origin });
    const clientId = String(form.get('clientId')).trim();
    const { issueToken } = await anon.request(IssueTokenDocument, { clientId, clientSecret: String(form.get('clientSecret')) });
    app.session = { clientId, token: issueToken.accessToken, expiresAt: issueToken.expiresAt, roles: issueToken.roles };
    saveSession(app.session);
    (ev.target as HTMLFormElement).reset();
    flash(undefined);
    await start();
  } catch (err) {
    flash(messageOf(err));
  }
});
$('signout').addEventListener('click', () => signOut());

for (const v of VIEWS) {
  $(`tab-${v}`).addEventListener('click', (ev) => {
    ev.preventDefault();
    closeJob();
    localStorage.removeItem(CURRENT_FILE_KEY);
    navigate({ view: v });
  });
}

let shownJob = '';
/** Shows the tab the URL names and the job it names, if any. */
async function show(r: Route): Promise<void> {
  if (!app.client) return;
  const view = (VIEWS as readonly string[]).includes(r.view) ? r.view : 'import';
  for (const v of VIEWS) {
    const tab = $(`tab-${v}`);
    if (v === view) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
    for (const id of SECTIONS[v]!) $(id).hidden = v !== view;
  }
  document.title = `Sluice · ${$(`tab-${view}`).textContent}`;
  const target = rememberedJob(r.params);
  const key = target ? JSON.stringify(target) : '';
  try {
    if (view === 'import') {
      await showImportScreen();
      await loadRecent();
    } else if (view === 'jobs') await showJobsScreen();
    else if (view === 'skills') await showSkillsScreen();
    if (key && key !== shownJob && view !== 'jobs') {
      shownJob = key;
      await (target!.file ? openFile(target!.file) : openJob(target!.job!)).catch((err: unknown) => {
        // A remembered job from another server or client: forget it quietly.
        if (!(err instanceof SluiceRequestError && err.code === 'NOT_FOUND')) throw err;
        localStorage.removeItem(CURRENT_FILE_KEY);
        closeJob();
      });
    }
    if (!key || view === 'jobs') {
      shownJob = '';
      closeJob();
    }
  } catch (err) {
    fail(err);
  }
}

async function start(): Promise<void> {
  app.session ??= loadSession();
  if (!app.session) {
    $('signin').hidden = false;
    return;
  }
  showSignedIn();
  if (!started) {
    started = true;
    void startJobFeed();
  }
  try {
    await loadSpecs();
  } catch (err) {
    fail(err);
    return;
  }
  shownJob = '';
  // Keep the old page's `?file=` links working: they open on the import tab.
  await show(currentRoute());
}

initJobScreen();
initImportScreen();
initJobsScreen();
initDirectoryScreen();
initSkillsScreen();
initRecent();
onRoute((r) => void show(r));
void start();
