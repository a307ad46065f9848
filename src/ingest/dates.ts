import type { DateFormat } from './contract';

/** Parses one cell into ISO `YYYY-MM-DD`, or returns null when it is not a real date. */
export type DateParser = (text: string) => string | null;

const DIGIT_0 = 48;
const DASH = 45;

/**
 * Builds the parser for a declared format. Hand-rolled over char codes (no RegExp, no Date)
 * because it runs once per cell on the hot path.
 * - `YYYY-MM-DD`: exactly 10 characters.
 * - `DD/MM/YYYY`, `DD/MM/YY`: day and month take 1 or 2 digits (spreadsheets drop the zero);
 *   the year takes exactly 4 or 2. Two-digit years are 2000-2099.
 * Impossible dates (31/02/23, 29/02/2023, month 13, year 0000) are rejected.
 */
export function dateParser(format: DateFormat): DateParser {
  switch (format) {
    case 'YYYY-MM-DD':
      return parseIsoDate;
    case 'DD/MM/YYYY':
      return (text) => parseDayFirst(text, 4);
    case 'DD/MM/YY':
      return (text) => parseDayFirst(text, 2);
  }
}

function parseIsoDate(text: string): string | null {
  if (text.length !== 10 || text.charCodeAt(4) !== DASH || text.charCodeAt(7) !== DASH) return null;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 7);
  const day = digits(text, 8, 10);
  return isRealDate(year, month, day) ? text : null;
}

function parseDayFirst(text: string, yearDigits: 2 | 4): string | null {
  const slash1 = text.indexOf('/');
  const slash2 = slash1 < 0 ? -1 : text.indexOf('/', slash1 + 1);
  if (slash1 < 1 || slash1 > 2 || slash2 - slash1 < 2 || slash2 - slash1 > 3) return null;
  if (text.length - slash2 - 1 !== yearDigits) return null;
  const day = digits(text, 0, slash1);
  const month = digits(text, slash1 + 1, slash2);
  let year = digits(text, slash2 + 1, text.length);
  if (yearDigits === 2 && year >= 0) year += 2000;
  if (!isRealDate(year, month, day)) return null;
  return `${String(year).padStart(4, '0')}-${pad2(month)}-${pad2(day)}`;
}

/** The decimal value of text[from, to), or -1 if any character there is not a digit. */
function digits(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - DIGIT_0;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** A date of the proleptic Gregorian calendar PostgreSQL accepts (no year 0, no 31/02). */
export function isRealDate(year: number, month: number, day: number): boolean {
  // Year 0 does not exist in PostgreSQL's calendar (1 BC is followed by AD 1).
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  return day <= daysInMonth(year, month);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
