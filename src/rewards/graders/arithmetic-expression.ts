/**
 * A safe evaluator for the arithmetic a Countdown answer may contain: integers, + − × ÷ and parentheses.
 * It parses (never `eval`s) and computes with exact fractions, so `(8 / 3) * 3` is exactly 8.
 */

export interface Fraction {
  readonly num: bigint;
  readonly den: bigint; // always > 0, and gcd(num, den) = 1
}

export interface EvaluatedExpression {
  readonly value: Fraction;
  /** Every integer literal, in order of appearance: Countdown checks them against the allowed numbers. */
  readonly literals: number[];
}

type Token = { kind: 'number'; value: number } | { kind: 'op'; value: '+' | '-' | '*' | '/' | '(' | ')' };

const MAX_LENGTH = 200;

export class ExpressionError extends Error {}

export function evaluateExpression(text: string): EvaluatedExpression {
  if (text.length > MAX_LENGTH) throw new ExpressionError(`expression longer than ${MAX_LENGTH} characters`);
  const tokens = tokenize(text);
  const literals: number[] = [];
  let position = 0;

  const peek = () => tokens[position];
  const take = () => tokens[position++];

  // expression := term (('+' | '-') term)* ; term := factor (('*' | '/') factor)* ; factor := number | '(' expression ')' | '-' factor
  const expression = (): Fraction => {
    let value = term();
    for (let t = peek(); t?.kind === 'op' && (t.value === '+' || t.value === '-'); t = peek()) {
      take();
      value = t.value === '+' ? add(value, term()) : add(value, negate(term()));
    }
    return value;
  };
  const term = (): Fraction => {
    let value = factor();
    for (let t = peek(); t?.kind === 'op' && (t.value === '*' || t.value === '/'); t = peek()) {
      take();
      value = t.value === '*' ? multiply(value, factor()) : divide(value, factor());
    }
    return value;
  };
  const factor = (): Fraction => {
    const t = take();
    if (!t) throw new ExpressionError('unexpected end of expression');
    if (t.kind === 'number') {
      literals.push(t.value);
      return fraction(BigInt(t.value), 1n);
    }
    if (t.value === '-') return negate(factor());
    if (t.value === '(') {
      const value = expression();
      const close = take();
      if (close?.kind !== 'op' || close.value !== ')') throw new ExpressionError('missing closing parenthesis');
      return value;
    }
    throw new ExpressionError(`unexpected '${t.value}'`);
  };

  const value = expression();
  if (position !== tokens.length) throw new ExpressionError(`unexpected '${String(tokens[position].value)}'`);
  return { value, literals };
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const normalized = text.replace(/[×x]/g, '*').replace(/÷/g, '/').replace(/[−–]/g, '-');
  for (let i = 0; i < normalized.length; ) {
    const c = normalized[i];
    if (/\s/.test(c)) {
      i++;
    } else if (/\d/.test(c)) {
      let j = i;
      while (j < normalized.length && /\d/.test(normalized[j])) j++;
      if (j - i > 9) throw new ExpressionError('number too long');
      tokens.push({ kind: 'number', value: Number(normalized.slice(i, j)) });
      i = j;
    } else if ('+-*/()'.includes(c)) {
      tokens.push({ kind: 'op', value: c as '+' });
      i++;
    } else {
      throw new ExpressionError(`character '${c}' is not allowed`);
    }
  }
  return tokens;
}

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function fraction(num: bigint, den: bigint): Fraction {
  if (den === 0n) throw new ExpressionError('division by zero');
  const sign = den < 0n ? -1n : 1n;
  const divisor = gcd(num, den) || 1n;
  return { num: (sign * num) / divisor, den: (sign * den) / divisor };
}

const add = (a: Fraction, b: Fraction) => fraction(a.num * b.den + b.num * a.den, a.den * b.den);
const negate = (a: Fraction): Fraction => ({ num: -a.num, den: a.den });
const multiply = (a: Fraction, b: Fraction) => fraction(a.num * b.num, a.den * b.den);
const divide = (a: Fraction, b: Fraction) => fraction(a.num * b.den, a.den * b.num);

export function fractionToString(value: Fraction): string {
  return value.den === 1n ? String(value.num) : `${value.num}/${value.den}`;
}
