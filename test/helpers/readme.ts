import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './process';

export interface ReadmeBlock {
  /** The fence's language: sh, graphql, ts... */
  lang: string;
  /** The comment's words after `readme-test` / `readme-file` (a note, or a file name). */
  note: string;
  kind: 'test' | 'file';
  body: string;
  /** 1-based line of the opening fence in README.md, for failure messages. */
  line: number;
}

/**
 * The fenced blocks of README.md that are marked to be checked: an HTML comment (invisible on
 * GitHub) on the line before the fence, `<!-- readme-test -->` (run it) or
 * `<!-- readme-file: name -->` (a file the reader creates).
 */
export function readmeBlocks(): ReadmeBlock[] {
  const text = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const blocks: ReadmeBlock[] = [];
  const re = /^<!-- readme-(test|file)(?::\s*([^>]*?))?\s*-->\n```(\w+)\n([\s\S]*?)^```$/gm;
  for (const m of text.matchAll(re)) {
    blocks.push({
      kind: m[1] as 'test' | 'file',
      note: (m[2] ?? '').trim(),
      lang: m[3]!,
      body: m[4]!,
      line: text.slice(0, m.index! + m[0].indexOf('```')).split('\n').length,
    });
  }
  return blocks;
}
