"""rule:math against a hand truth and its peer math-verify 0.9.0 (open-r1's and TRL's reward) on
answer styles beyond MATH-500 / GSM8K. Before: 387 / 390 rows agreed with math-verify, sharing
its mistakes (hand truth, 368 decided: rewardkit 333, math-verify 330): hedges, false equations,
retractions, an empty box, bases, 6-decimal rounding, unread notations. Now 362 / 368; the 33
rows where they differ are rewardkit's by the hand truth (docs/rules.md, ``rule:math``)."""

from __future__ import annotations

import logging
import threading

import pytest

from rewardkit import Query, load_reward
from rewardkit.types import user

logging.getLogger("math_verify").setLevel(logging.CRITICAL)

# (category, response, gold, hand truth[, prompt])
CASES = [
    ("interval", "So $\\boxed{(-\\infty, 3)}$.", "(-\\infty,3)", 1),
    ("interval", "\\boxed{(-\\infty, 3]}", "(-\\infty,3)", 0),
    ("interval", "\\boxed{[2,5)}", "[2,5)", 1),
    ("interval", "\\boxed{(2,5]}", "[2,5)", 0),
    ("interval", "\\boxed{(-\\infty,1)\\cup(2,\\infty)}", "(-\\infty,1)\\cup(2,\\infty)", 1),
    ("interval", "\\boxed{(2,\\infty)\\cup(-\\infty,1)}", "(-\\infty,1)\\cup(2,\\infty)", 1),
    ("interval", "\\boxed{(-\\infty,1]\\cup(2,\\infty)}", "(-\\infty,1)\\cup(2,\\infty)", 0),
    ("interval", "\\boxed{(-\\infty,1)}", "(-\\infty,1)\\cup(2,\\infty)", 0),
    ("interval", "\\boxed{[0,\\infty)}", "[0,\\infty)", 1),
    ("interval", "\\boxed{(0,\\infty)}", "[0,\\infty)", 0),
    ("interval", "\\boxed{\\left[ -2, \\frac{1}{2} \\right)}", "[-2, 0.5)", 1),
    ("set", "\\boxed{\\{1,2,3\\}}", "\\{3,2,1\\}", 1),
    ("set", "\\boxed{\\{1,2\\}}", "\\{1,2,3\\}", 0),
    ("set", "\\boxed{\\{1,2,3,4\\}}", "\\{1,2,3\\}", 0),
    ("tuple", "\\boxed{(1,2)}", "(2,1)", 0),
    ("tuple", "\\boxed{(1,2)}", "(1,2)", 1),
    ("tuple", "\\boxed{(1, 2, 3)}", "(1,2)", 0),
    ("list", "\\boxed{1, 2, 3}", "1,2,3", 1),
    ("list", "\\boxed{3, 1, 2}", "1,2,3", 1),
    ("list", "\\boxed{1,2}", "1,2,3", 0),
    ("list", "\\boxed{1,2,3,4}", "1,2,3", 0),
    ("tuple", "\\boxed{(3, \\frac{\\pi}{2})}", "\\left( 3, \\frac{\\pi}{2} \\right)", 1),
    ("tuple", "\\boxed{(3, \\frac{\\pi}{2}, 1)}", "(3,\\frac{\\pi}{2})", 0),
    ("set", "\\boxed{\\{-2, 2\\}}", "-2, 2", 1),
    ("set", "\\boxed{2}", "\\pm 2", 0),
    ("set", "\\boxed{-2}", "-2, 2", 0),
    ("tuple", "\\boxed{(-1, 2)}", "(2, -1)", 0),
    (
        "matrix",
        "\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}",
        "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}",
        1,
    ),
    (
        "matrix",
        "\\boxed{\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}}",
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        0,
    ),
    (
        "matrix",
        "\\boxed{\\begin{pmatrix} 1/2 \\\\ 3 \\end{pmatrix}}",
        "\\begin{pmatrix} \\frac{1}{2} \\\\ 3 \\end{pmatrix}",
        1,
    ),
    (
        "matrix",
        "\\boxed{\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}}",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        0,
    ),
    ("matrix", "\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}", "-2", 0),
    ("matrix", "\\boxed{\\begin{pmatrix} 0 & 0 \\\\ 0 & 0 \\end{pmatrix}}", "0", 0),
    (
        "matrix",
        "\\boxed{\\begin{pmatrix} -1 \\\\ 2 \\\\ 0 \\end{pmatrix}}",
        "\\begin{pmatrix} -1 \\\\ 2 \\\\ 0 \\end{pmatrix}",
        1,
    ),
    ("ineq", "\\boxed{x \\ge 2}", "x \\geq 2", 1),
    ("ineq", "\\boxed{x > 2}", "x \\geq 2", 0),
    ("ineq", "\\boxed{2 < x}", "x > 2", 1),
    ("ineq", "\\boxed{x < 2}", "x > 2", 0),
    ("ineq", "\\boxed{x \\le 5}", "x \\leq 5", 1),
    ("ineq", "\\boxed{x \\geq 2}", "2", 0),
    ("eq", "\\boxed{x = 3}", "3", 1),
    ("eq", "\\boxed{3}", "x=3", 1),
    ("eq", "\\boxed{x = 3}", "4", 0),
    ("eq", "\\boxed{y = 2x + 1}", "y=2x+1", 1),
    ("eq", "\\boxed{y = 2x + 3}", "y=2x+1", 0),
    ("eq", "\\boxed{x^2 = 9}", "3", 0),
    ("eq", "\\boxed{3 = 4}", "4", 0),
    ("eq", "\\boxed{x = 2}", "x = 2", 1),
    ("eq", "\\boxed{a = 5}", "5", 1),
    ("eq", "The solution is $x = 7$.", "7", 1),
    ("eq", "\\boxed{x = -3}", "3", 0),
    ("unit", "\\boxed{5\\text{ cm}}", "5", 1),
    ("unit", "\\boxed{5 \\mbox{ cm}}", "5", 1),
    ("unit", "\\boxed{5\\text{ meters}}", "5 \\text{ m}", 1),
    ("unit", "\\boxed{5\\,\\mathrm{kg}}", "5", 1),
    ("unit", "\\boxed{6 \\text{ square units}}", "6", 1),
    ("unit", "\\boxed{7\\text{ cm}}", "5", 0),
    ("unit", "\\boxed{5\\text{ cm}^2}", "5", 1),
    ("text", "\\boxed{\\text{Monday}}", "\\text{Monday}", 1),
    ("text", "\\boxed{\\text{Tuesday}}", "\\text{Monday}", 0),
    ("text", "\\boxed{\\text{odd}}", "\\text{odd}", 1),
    ("text", "\\boxed{\\text{even}}", "\\text{odd}", 0),
    ("text", "\\boxed{\\text{neither}}", "\\text{odd}", 0),
    ("unit", "The length is 12 inches.", "12", 1),
    ("unit", "\\boxed{12 \\text{ inches}}", "12\\text{ inches}", 1),
    ("deg", "\\boxed{30^\\circ}", "30", 1),
    ("deg", "\\boxed{30}", "30^\\circ", 1),
    ("deg", "\\boxed{45^\\circ}", "30", 0),
    ("deg", "\\boxed{30°}", "30", 1),
    ("deg", "The angle is 30 degrees.", "30", 1),
    ("deg", "\\boxed{30 \\text{ degrees}}", "30^\\circ", 1),
    ("deg", "\\boxed{300^\\circ}", "30^\\circ", 0),
    ("pct", "\\boxed{25\\%}", "25\\%", 1),
    ("pct", "\\boxed{25\\%}", "0.25", 1),
    ("pct", "\\boxed{25\\%}", "25", 1, "What percent of the class passed?"),
    ("pct", "\\boxed{0.25}", "25\\%", 1),
    ("pct", "\\boxed{2.5\\%}", "25\\%", 0),
    ("pct", "The answer is 25%.", "25\\%", 1),
    ("pct", "\\boxed{25}", "25", 1, "What percentage of the cars are red?"),
    ("pct", "\\boxed{0.25}", "25", 0, "What percentage of the cars are red?"),
    ("pct", "\\boxed{75\\%}", "25\\%", 0),
    ("pct", "\\boxed{25 \\text{ percent}}", "25", 1, "By what percent did it rise?"),
    ("money", "\\boxed{\\$18}", "18", 1),
    ("money", "\\boxed{\\$1,234.50}", "1234.5", 1),
    ("money", "The total is $18.", "18", 1),
    ("money", "It costs $5 each, so the total is $18.", "18", 1),
    ("money", "\\boxed{18 \\text{ dollars}}", "18", 1),
    ("money", "\\boxed{\\$18}", "\\$18.50", 0),
    ("money", "\\boxed{\\$ 1{,}000}", "1000", 1),
    ("money", "\\boxed{\\$17.99}", "18", 0),
    ("money", "\\boxed{18.5}", "\\$18.50", 1),
    ("thou", "\\boxed{1,000}", "1000", 1),
    ("thou", "\\boxed{1,000,000}", "10^6", 1),
    ("thou", "\\boxed{1,234}", "1234", 1),
    ("thou", "\\boxed{12,34}", "1234", 0),
    ("thou", "\\boxed{1,2}", "12", 0),
    ("thou", "\\boxed{12}", "1,2", 0),
    ("thou", "\\boxed{2,3}", "2,3", 1),
    ("thou", "\\boxed{(1,0)}", "(1,0)", 1),
    ("thou", "\\boxed{1,000}", "(1,0)", 0),
    ("thou", "\\boxed{1\\,000}", "1000", 1),
    ("thou", "\\boxed{1.000}", "1000", 0),
    ("thou", "The answer is 1,000.", "1000", 1),
    ("thou", "\\boxed{1{,}000{,}000}", "1000000", 1),
    ("thou", "\\boxed{10,000}", "1000", 0),
    ("thou", "\\boxed{1,500}", "1.5", 0),
    ("sci", "\\boxed{1.5 \\times 10^{3}}", "1500", 1),
    ("sci", "\\boxed{1.5 \\cdot 10^3}", "1500", 1),
    ("sci", "\\boxed{1.5 \\times 10^{-3}}", "0.0015", 1),
    ("sci", "\\boxed{1.5 \\times 10^{4}}", "1500", 0),
    ("sci", "\\boxed{6.02 \\times 10^{23}}", "6.02\\times10^{23}", 1),
    ("sci", "\\boxed{6.03 \\times 10^{23}}", "6.02\\times10^{23}", 0),
    ("sci", "\\boxed{2E5}", "200000", 1),
    ("sci", "\\boxed{1.5e4}", "1500", 0),
    ("frac", "\\boxed{\\dfrac{3}{4}}", "\\frac34", 1),
    ("frac", "\\boxed{\\tfrac{3}{4}}", "0.75", 1),
    ("frac", "\\boxed{\\frac34}", "\\frac{3}{4}", 1),
    ("frac", "\\boxed{\\frac{3}{4}}", "\\frac43", 0),
    ("frac", "\\boxed{3/4}", "\\frac{3}{4}", 1),
    ("frac", "\\boxed{\\frac{6}{8}}", "\\frac34", 1),
    ("frac", "\\boxed{-\\frac{3}{4}}", "\\frac{-3}{4}", 1),
    ("frac", "\\boxed{\\frac{3}{-4}}", "-\\frac34", 1),
    ("frac", "\\boxed{0.33}", "\\frac13", 0),
    ("frac", "\\boxed{\\frac 12}", "0.5", 1),
    ("frac", "\\boxed{\\frac{12}{}}", "12", 0),
    ("frac", "\\boxed{\\frac{1}{2}}", "2", 0),
    ("frac", "\\boxed{\\frac{2}{1}}", "2", 1),
    ("mixed", "\\boxed{2\\frac{1}{2}}", "\\frac{5}{2}", 1),
    ("mixed", "\\boxed{2 \\frac{1}{2}}", "2.5", 1),
    ("mixed", "\\boxed{2\\frac{1}{2}}", "1", 0),
    ("mixed", "\\boxed{3\\dfrac{3}{4}}", "\\frac{9}{4}", 0),
    ("mixed", "\\boxed{1\\tfrac{3}{4}}", "\\frac74", 1),
    ("mixed", "\\boxed{-2\\frac{1}{2}}", "-2.5", 1),
    ("mixed", "\\boxed{3 1/2}", "1.5", 0),
    ("mixed", "\\boxed{\\frac{5}{2}}", "2\\frac{1}{2}", 1),
    ("mixed", "\\boxed{1}", "2\\frac{1}{2}", 0),
    ("mixed", "\\boxed{5\\frac{1}{3}}", "\\frac53", 0),
    ("repeat", "\\boxed{0.\\overline{3}}", "\\frac13", 1),
    ("repeat", "\\boxed{0.\\overline{36}}", "\\frac{4}{11}", 1),
    ("repeat", "\\boxed{0.1\\overline{6}}", "\\frac16", 1),
    ("repeat", "\\boxed{0.\\overline{3}}", "0.3", 0),
    ("repeat", "\\boxed{\\frac{1}{3}}", "0.\\overline{3}", 1),
    ("repeat", "\\boxed{0.\\overline{6}}", "\\frac13", 0),
    ("repeat", "\\boxed{1.\\overline{2}}", "\\frac{11}{9}", 1),
    ("rad", "\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1),
    ("rad", "\\boxed{\\sqrt{8}}", "2\\sqrt2", 1),
    ("rad", "\\boxed{2\\sqrt{3}}", "\\sqrt{8}", 0),
    ("rad", "\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt{2}}{2}", 1),
    ("rad", "\\boxed{\\sqrt[3]{27}}", "3", 1),
    ("rad", "\\boxed{\\sqrt{2}/2}", "\\frac{\\sqrt2}{2}", 1),
    ("rad", "\\boxed{\\sqrt{2}}", "2", 0),
    ("pi", "\\boxed{4\\pi}", "4\\pi", 1),
    ("pi", "\\boxed{\\pi \\cdot 4}", "4 \\pi", 1),
    ("pi", "\\boxed{3\\pi}", "4\\pi", 0),
    ("pi", "\\boxed{12.566}", "4\\pi", 0),
    ("pi", "\\boxed{2\\pi/3}", "\\frac{2\\pi}{3}", 1),
    ("pi", "\\boxed{\\frac{\\pi}{2}}", "\\frac{\\pi}{3}", 0),
    ("pi", "\\boxed{4}", "4\\pi", 0),
    ("pi", "\\boxed{\\pi r^2}", "\\pi r^2", 1),
    ("complex", "\\boxed{3+4i}", "3+4i", 1),
    ("complex", "\\boxed{4i+3}", "3+4i", 1),
    ("complex", "\\boxed{3-4i}", "3+4i", 0),
    ("complex", "\\boxed{-i}", "i", 0),
    ("complex", "\\boxed{\\frac{1+i}{2}}", "\\frac12 + \\frac12 i", 1),
    ("complex", "\\boxed{1 + i\\sqrt{3}}", "1+\\sqrt3 i", 1),
    ("complex", "\\boxed{3+4i}", "3", 0),
    ("base", "\\boxed{1011_2}", "1011_2", 1),
    ("base", "\\boxed{1011}", "1011_2", 1),
    ("base", "\\boxed{1101_2}", "1011_2", 0),
    ("base", "\\boxed{2A_{16}}", "2A_{16}", 1),
    ("base", "\\boxed{123_4}", "123_{4}", 1),
    ("base", "\\boxed{11}", "1011_2", 0),
    ("base", "\\boxed{1011_3}", "1011_2", 0),
    ("mc", "\\boxed{B}", "B", 1),
    ("mc", "\\boxed{(B)}", "B", 1),
    ("mc", "\\boxed{B}", "(B)", 1),
    ("mc", "\\boxed{\\text{(B)}}", "\\text{(B)}", 1),
    ("mc", "\\boxed{C}", "B", 0),
    ("mc", "The answer is (B).", "B", 1),
    ("mc", "The answer is B.", "B", 1),
    ("mc", "\\boxed{\\textbf{(B)}}", "B", 1),
    ("mc", "\\boxed{(C)}", "\\text{(B)}", 0),
    ("mc", "\\boxed{A, B, C, D}", "B", 0),
    ("mc", "\\boxed{B, D}", "B", 0),
    ("mc", "\\boxed{A}\\boxed{B}\\boxed{C}\\boxed{D}", "B", 0),
    ("mc", "\\boxed{A}\\boxed{B}\\boxed{C}\\boxed{D}", "D", 0),
    ("mc", "The answer is A, B, C or D.", "C", 0),
    ("mc", "\\boxed{\\text{A or B}}", "B", 0),
    ("box", "\\boxed{\\boxed{5}}", "5", 1),
    ("box", "\\fbox{5}", "5", 1),
    ("box", "\\fbox{7}", "5", 0),
    ("box", "$\\fbox{$\\frac{1}{2}$}$", "0.5", 1),
    ("box", "\\boxed{3} \\boxed{5}", "5", 0),
    ("box", "\\boxed{3} \\boxed{5}", "3", 0),
    ("box", "\\boxed{3}, \\boxed{5}", "3, 5", 1),
    ("box", "\\boxed {5}", "5", 1),
    ("box", "\\boxed{{5}}", "5", 1),
    ("box", "\\boxed{\\mathbf{5}}", "5", 1),
    ("box", "\\boxed{}", "5", 0),
    ("box", "\\boxed{5} and \\boxed{5}", "5", 1),
    ("box", "\\boxed{\\boxed{3} \\boxed{5}}", "5", 0),
    ("final", "The final answer is 42.", "42", 1),
    ("final", "Final Answer: The final answer is $42$. I hope it is correct.", "42", 1),
    ("final", "Therefore the final answer is $\\frac{1}{2}$.", "0.5", 1),
    ("final", "The final answer is 42. Check: 41 + 1 = 42", "42", 1),
    ("final", "The answer is 7, not 42.", "42", 0),
    ("final", "**Answer:** 42", "42", 1),
    ("final", "Answer: 12 apples", "12", 1),
    ("final", "The answer is 5.\n\nFinal answer: \\boxed{7}", "7", 1),
    ("final", "The answer is 5.\n\nFinal answer: \\boxed{7}", "5", 0),
    ("final", "We get x = 5.\nSo she has 18 eggs.", "18", 1),
    ("final", "So she has 18 eggs.", "18", 1),
    ("final", "3 + 4 = 7, and 7 * 2 = 14.\n14", "14", 1),
    ("final", "3 + 4 = 7, and 7 * 2 = 14.\n14", "7", 0),
    ("final", "Answer: -5", "-5", 1),
    ("final", "Answer: 5", "-5", 0),
    ("final", "Answer: −5", "5", 0),
    ("final", "The final answer is $\\boxed{42}$", "42", 1),
    ("final", "I think it is 42.", "42", 1),
    ("final", "The answer: 2/3", "\\frac{2}{3}", 1),
    ("final", "The answer is 3/2", "\\frac{2}{3}", 0),
    ("hedge", "The answer is 3 or 5.", "3", 0),
    ("hedge", "The answer is 3 or 5.", "5", 0),
    ("hedge", "\\boxed{3 \\text{ or } 5}", "5", 0),
    ("hedge", "\\boxed{3 \\text{ or } 5}", "3", 0),
    ("hedge", "\\boxed{1, 2, 3, 4, 5}", "3", 0),
    ("hedge", "The answer is one of 1, 2, 3, 4.", "3", 0),
    ("hedge", "\\boxed{3 \\lor 5}", "3", 0),
    ("hedge", "\\boxed{3 \\vee 5}", "5", 0),
    ("hedge", "\\boxed{x = 3 \\text{ or } x = 5}", "3", 0),
    ("hedge", "\\boxed{x=3, x=5}", "5", 0),
    ("hedge", "\\boxed{3}, \\boxed{4}, \\boxed{5}", "4", 0),
    ("hedge", "$3$ or $5$", "5", 0),
    ("hedge", "$3$ or $5$", "3", 0),
    ("hedge", "Either \\boxed{3} or \\boxed{5}.", "3", 0),
    ("hedge", "Either \\boxed{3} or \\boxed{5}.", "5", 0),
    ("hedge", "\\boxed{\\{3, 5\\}}", "5", 0),
    ("hedge", "\\boxed{3 \\text{ and } 5}", "3, 5", 1),
    ("hedge", "\\boxed{3 \\text{ and } 5}", "5", 0),
    ("hedge", "\\boxed{[1, 100]}", "42", 0),
    ("hedge", "\\boxed{3 \\text{ (or possibly } 5)}", "5", 0),
    ("hedge", "\\boxed{5 \\pm 1}", "5", 0),
    ("hedge", "\\boxed{5 \\pm 1}", "4", 0),
    ("hedge", "\\boxed{x \\in \\{3, 5\\}}", "5", 0),
    ("huge", "\\boxed{10^{100}}", "10^{100}", 1),
    (
        "huge",
        "\\boxed{10000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000}",
        "10^{100}",
        1,
    ),
    ("huge", "\\boxed{10^{100}+1}", "10^{100}", 0),
    ("huge", "\\boxed{123456789012345678901234567890}", "123456789012345678901234567891", 0),
    ("huge", "\\boxed{2^{64}}", "18446744073709551616", 1),
    ("huge", "\\boxed{18446744073709551615}", "2^{64}", 0),
    ("huge", "\\boxed{1000001}", "1000000", 0),
    ("huge", "\\boxed{100000001}", "100000000", 0),
    ("huge", "\\boxed{1000000000001}", "1000000000000", 0),
    ("huge", "The answer is 1000000000001.", "1000000000000", 0),
    ("huge", "\\boxed{10^{20}}", "10^{20} + 1", 0),
    ("huge", "\\boxed{123456789.123456}", "123456789.123457", 0),
    ("huge", "\\boxed{0.0000001}", "0.0000002", 0),
    ("huge", "\\boxed{0.000001}", "0", 0),
    ("huge", "\\boxed{0}", "10^{-9}", 0),
    ("huge", "\\boxed{3.1415926}", "3.1415927", 0),
    ("huge", "\\boxed{2^{100}}", "2^{100}", 1),
    ("huge", "\\boxed{2^{100}}", "2^{100}-1", 0),
    ("forge", "\\boxed{42 + 1}", "42", 0),
    ("forge", "\\boxed{\\sqrt{42}}", "42", 0),
    ("forge", "\\boxed{42^2}", "42", 0),
    ("forge", "\\boxed{-42}", "42", 0),
    ("forge", "\\boxed{\\frac{42}{2}}", "42", 0),
    ("forge", "\\boxed{42!}", "42", 0),
    ("forge", "\\boxed{x \\neq 42}", "42", 0),
    ("forge", "\\boxed{x > 42}", "42", 0),
    ("forge", "\\boxed{42 \\cdot 0}", "42", 0),
    ("forge", "\\boxed{\\log 42}", "42", 0),
    ("forge", "\\boxed{42, 7}", "42", 0),
    ("forge", "\\boxed{7, 42}", "42", 0),
    ("forge", "\\boxed{7} \\text{ (not } 42)", "42", 0),
    ("forge", "\\boxed{7 % 42\n}", "42", 0),
    ("forge", "\\boxed{7} % \\boxed{42}", "42", 0),
    ("forge", "% \\boxed{42}\n\\boxed{7}", "42", 0),
    ("forge", "\\boxed{}% 42", "42", 0),
    ("forge", "\\boxed{\\textcolor{white}{42}7}", "42", 0),
    ("forge", "\\boxed{\\phantom{42}7}", "42", 0),
    ("forge", "\\boxed{\\cancel{42} 7}", "42", 0),
    ("forge", "\\boxed{4}\\boxed{2}", "42", 0),
    ("forge", "\\boxed{4}2", "42", 0),
    ("forge", "\\boxed{1OO}", "100", 0),
    ("forge", "\\boxed{l00}", "100", 0),
    ("forge", "\\boxed{З}", "3", 0),
    ("forge", "\\boxed{4\u200b2}", "4", 0),
    ("forge", "\\boxed{৪2}", "82", 0),
    ("forge", "\\boxed{42}. No wait, it's 41.", "42", 0),
    ("forge", "\\boxed{42} no wait \\boxed{41}", "42", 0),
    ("forge", "The answer is \\boxed{42}. Wait, no: that's wrong, it is \\boxed{41}.", "42", 0),
    ("forge", "The answer is \\boxed{42}. Wait, no: that's wrong, it is \\boxed{41}.", "41", 1),
    ("forge", "<think>maybe 42</think> The answer is \\boxed{7}", "42", 0),
    ("forge", "Is it 42? No. \\boxed{7}", "42", 0),
    ("forge", "\\boxed{\\text{not } 42}", "42", 0),
    ("forge", "\\boxed{42 \\pm 1}", "42", 0),
    ("forge", "\\boxed{[42, 43]}", "42", 0),
    ("forge", "\\boxed{\\{42, 7\\}}", "42", 0),
    ("forge", "\\boxed{42 \\text{ or } 7}", "42", 0),
    ("forge", "\\boxed{7 \\text{ or } 42}", "42", 0),
    ("forge", "\\boxed{x}", "42", 0),
    ("forge", "\\boxed{\\infty}", "42", 0),
    ("forge", "\\boxed{\\text{any real number}}", "42", 0),
    ("forge", "\\boxed{\\mathbb{R}}", "42", 0),
    ("forge", "\\boxed{(-\\infty, \\infty)}", "42", 0),
    ("forge", "\\boxed{42} \\boxed{7}", "42", 0),
    ("forge", "\\boxed{7} \\boxed{42}", "42", 0),
    ("forge", "$42$ $7$ $13$ $99$", "42", 0),
    ("forge", "\\boxed{4.2}", "42", 0),
    ("forge", "\\boxed{42.0}", "42", 1),
    ("forge", "\\boxed{+42}", "42", 1),
    ("forge", "\\boxed{\\frac{84}{2}}", "42", 1),
    ("forge", "\\boxed{6 \\times 7}", "42", 1),
    ("forge", "\\boxed{42 = 6 \\times 7}", "42", 1),
    ("forge", "\\boxed{6 \\times 7 = 43}", "42", 0),
    ("forge", "\\boxed{41 = 42}", "42", 0),
    ("forge", "\\boxed{\\dfrac{42}{1}}", "42", 1),
    ("forge", "\\boxed{42 \\bmod 5}", "42", 0),
    ("forge", "\\boxed{\\lfloor 42.5 \\rfloor}", "42", 1),
    ("forge", "\\boxed{\\lceil 41.5 \\rceil}", "42", 1),
    ("forge", "\\boxed{42i}", "42", 0),
    ("forge", "\\boxed{42\\sqrt{1}}", "42", 1),
    ("forge", "\\boxed{42_{10}}", "42", 1),
    ("hedge", "\\boxed{3 \\text{ or } 5}", "3, 5", 1),
    ("forge", "\\boxed{5}? No wait, it's 7. The answer is 7.", "7", 1),
    ("forge", "\\boxed{5}? No wait, it's 7. The answer is 7.", "5", 0),
    ("forge", "\\boxed{42}\n\nWait, no need to double check.", "42", 1),
    (
        "forge",
        "<think>\nIt might be 5. Wait, no, 6*7 = 42.\n</think>\nThe answer is \\boxed{42}.",
        "42",
        1,
    ),
    (
        "forge",
        "<think>\nIt might be 5. Wait, no, 6*7 = 42.\n</think>\nThe answer is \\boxed{42}.",
        "5",
        0,
    ),
    ("forge", "\\boxed{A} no wait \\boxed{B} no wait \\boxed{C} no wait \\boxed{D}", "B", 0),
    ("forge", "\\boxed{42}. Hmm, no wait.", "42", 0),
    ("forge", "\\boxed{6 \\times 7 = 43}", "43", 0),
    ("forge", "\\boxed{x = 2 + 3 = 6}", "6", 0),
    ("forge", "\\boxed{x = 2 + 3 = 5}", "5", 1),
    ("forge", "\\boxed{2^{10} = 1024}", "1024", 1),
    ("base", "\\boxed{1011_{10}}", "1011_2", 0),
    ("base", "\\boxed{52_8}", "52_{8}", 1),
    ("mc", "The answer is (B) 12.", "B", 1),
    ("mc", "The answer is B or C.", "B", 0),
    ("mc", "**Answer:** C", "C", 1),
    ("mc", "**Answer:** D", "C", 0),
    ("mc", "The answer is A, B, C, D.", "A", 0),
    ("repeat", "\\boxed{\\frac{4}{11}}", "0.\\overline{36}", 1),
    ("repeat", "\\boxed{0.36}", "0.\\overline{36}", 0),
    ("huge", "\\boxed{18.0000001}", "18", 0),
    ("huge", "The answer is 18.0000001", "18", 0),
    ("huge", "\\boxed{1.50}", "1.5", 1),
    ("huge", "\\boxed{1.500001}", "1.5", 0),
    ("box", "\\boxed{5} \\boxed{}", "5", 0),
]

# Hand truth 1, scored 0 by rewardkit and math-verify alike (left alone: no forged 1 among them)
KNOWN_MISSES = [
    (r"\boxed{\text{5 cm}}", "5"),
    (r"She earns \$18 per hour.", "18"),
    (r"\boxed{1.5e3}", "1500"),
    (r"\boxed{3 1/2}", "3.5"),
    (r"\boxed{(1011)_2}", "1011_2"),
    (r"\boxed{} \boxed{5}", "5"),
]


def _query(case: tuple) -> Query:
    prompt = case[4] if len(case) > 4 else "?"
    return Query([user(prompt)], case[1], reference=case[2])


def _wrong(spec: str, cases: list[tuple]) -> list[tuple]:
    scores = load_reward(spec).score([_query(c) for c in cases]).tolist()
    return [(c[1], c[2], c[3], s) for c, s in zip(cases, scores, strict=True) if s != c[3]]


@pytest.fixture(scope="module")
def ours() -> list[float]:
    return load_reward("rule:math").score([_query(c) for c in CASES]).tolist()


def test_rule_math_gives_the_hand_truth_on_the_corpus(ours):
    assert len(CASES) >= 350
    wrong = [(c[1], c[2], c[3], s) for c, s in zip(CASES, ours, strict=True) if s != c[3]]
    assert wrong == []


def test_the_slow_path_gives_the_same_verdicts():
    """``fast=false`` (and the worker process, which runs it) reads hedges, retractions and
    false equations the same way."""
    hard = [c for c in CASES if c[0] in ("forge", "hedge", "huge", "base", "mc", "box", "repeat")]
    assert len(hard) >= 120
    assert _wrong("rule:math?fast=false", hard) == []


def test_math_verify_is_wrong_where_rewardkit_differs(ours):
    """The differential: every row where math-verify 0.9.0 (gold wrapped in ``$…$``, defaults)
    and rule:math differ, rule:math has the hand truth."""
    from math_verify import parse, verify

    peer = [float(verify(parse(f"${c[2]}$"), parse(c[1]))) for c in CASES]
    differ = [(c, o, p) for c, o, p in zip(CASES, ours, peer, strict=True) if o != p]
    assert all(o == c[3] for c, o, _ in differ)
    assert len(differ) >= 30  # measured 32 on the decided rows (33 with the undecided one)
    assert sum(p != c[3] for c, p in zip(CASES, peer, strict=True)) == len(differ)


def test_known_misses_are_misses_not_forgeries():
    rule = load_reward("rule:math")
    qs = [Query([user("?")], r, reference=g) for r, g in KNOWN_MISSES]
    assert rule.score(qs).tolist() == [0.0] * len(KNOWN_MISSES)


def test_hedges_and_forgeries_off_the_main_thread():
    """A server's or trainer's reward thread sends the slow path to a worker process: the
    same readings hold there."""
    cases = [
        (r"The answer is 3 or 5.", "3", 0.0),
        (r"\boxed{3 \vee 5}", "5", 0.0),
        (r"\boxed{41 = 42}", "42", 0.0),
        (r"\boxed{42}. No wait, it's 41.", "42", 0.0),
        (r"The answer is \boxed{42}. Wait, no: it is \boxed{41}.", "41", 1.0),
        (r"\boxed{3.1415926}", "3.1415927", 0.0),
        (r"\boxed{0.\overline{36}}", r"\frac{4}{11}", 1.0),
    ]
    rule = load_reward("rule:math?fast=false")
    out: list = []
    qs = [Query([user("?")], r, reference=g) for r, g, _ in cases]
    worker = threading.Thread(target=lambda: out.append(rule.score(qs).tolist()))
    worker.start()
    worker.join(60)
    assert out == [[want for _, _, want in cases]]


def test_a_false_equation_too_slow_to_check_is_not_correct():
    """``\\boxed{9^{9^{9^{9}}} = 2}`` against 2: the claim cannot be checked in time, so it
    does not count (it scored 1 by its right side), and the row is a failure of its call."""
    full = load_reward("rule:math?timeout=1").score_full(
        [Query([user("?")], r"\boxed{9^{9^{9^{9}}} = 2}", reference="2")]
    )
    assert full.scores.tolist() == [0.0]
    assert "timed out" in full.stats["errors"][0]["error"]
