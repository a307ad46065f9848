import { ImportCredentialEngineDocument, SkillNodeDocument, SkillsConnectionDocument } from '../../../src/sdk/client';
import { formatCount } from '../../../src/sdk/progress';
import { client, fail } from './app';
import { $, flash, h } from './dom';
import { openJob } from './job.screen';

/**
 * Credential Engine: an import form (framework CTIDs or registry URLs, one a line) and the
 * imported skills, searchable (`skillsConnection` filter) and browsable through parent and children.
 */

const SEARCH_PAGE = 25;

function skillButton(s: { id: string; name: string | null; referenceId?: string | null }): HTMLElement {
  return h(
    'button',
    { type: 'button', class: 'link', 'data-skill': s.id, onclick: () => void openSkill(s.id).catch(fail) },
    s.name ?? s.id,
    s.referenceId ? ` (${s.referenceId})` : '',
  );
}

async function search(): Promise<void> {
  const form = $<HTMLFormElement>('skills-search');
  const text = String(new FormData(form).get('q') ?? '').trim();
  const framework = String(new FormData(form).get('framework') ?? '').trim();
  const { skillsConnection: c } = await client().request(SkillsConnectionDocument, {
    first: SEARCH_PAGE,
    filter: { ...(text ? { search: text } : {}), ...(framework ? { framework } : {}) },
  });
  // Without a search, the top of each framework: skills with no parent.
  const nodes = text ? c.nodes : c.nodes.filter((n) => n.parentNodes.length === 0);
  $('skills-count').textContent = text
    ? `${formatCount(c.totalCount)} skill(s) match “${text}”`
    : `${formatCount(c.totalCount)} skill(s); the top level is listed`;
  $('skills-results').replaceChildren(...nodes.map((n) => h('li', {}, skillButton(n), n.framework?.name ? h('small', {}, ` · ${n.framework.name}`) : '')));
}

async function openSkill(id: string): Promise<void> {
  const { skill } = await client().request(SkillNodeDocument, { id });
  const panel = $('skill-node');
  panel.hidden = false;
  panel.replaceChildren(
    h('h3', { tabindex: -1, id: 'skill-node-title' }, skill.name ?? skill.id),
    skill.referenceId ? h('p', {}, h('small', {}, `Reference ${skill.referenceId}`)) : '',
    skill.description ? h('p', {}, skill.description) : '',
    h('p', {}, 'Framework: ', skill.framework?.name ?? skill.framework?.ctid ?? '–'),
    h('p', {}, 'Parent: ', skill.parent ? skillButton(skill.parent) : 'none (top level)'),
    h('h4', {}, `Children (${skill.children.length})`),
    skill.children.length
      ? h(
          'ul',
          { 'data-testid': 'skill-children' },
          ...skill.children.map((c) => h('li', {}, skillButton(c), c.childNodes.length ? h('small', {}, ` · ${c.childNodes.length} below`) : '')),
        )
      : h('p', {}, 'None.'),
  );
  $('skill-node-title').focus();
}

export function initSkillsScreen(): void {
  $('ce-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.target as HTMLFormElement;
    const list = String(new FormData(form).get('frameworks') ?? '')
      .split(/[\s,]+/)
      .map((s) => s.trim())
      .filter(Boolean);
    if (!list.length) return flash('Enter at least one framework CTID or registry URL.');
    const button = form.querySelector<HTMLButtonElement>('button[type=submit]')!;
    button.disabled = true;
    flash(undefined);
    try {
      const { importCredentialEngine: job } = await client().request(ImportCredentialEngineDocument, { competencyFrameworks: list });
      form.reset();
      // The form is free again at once; the job card follows the import, then the tree reloads.
      void openJob(job.id).then(search).catch(fail);
    } catch (err) {
      fail(err);
    } finally {
      button.disabled = false;
    }
  });
  $('skills-search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void search().catch(fail);
  });
}

export async function showSkillsScreen(): Promise<void> {
  await search();
}
