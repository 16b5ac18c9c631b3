// drive.mjs - walks a real browser (Debian's Chromium, headless) through web pages, step by
// step, and says what every page showed. Issue 18 item 6.
//
//   node tests/browser/drive.mjs PLAN.json > WALK.json     (or the plan on stdin: "-")
//
// Why a plan and not a script per flow: the walks (connect, consent, disconnect, the
// HubSpot install, later the settings page) are the same few verbs on stable element ids,
// so the test (tests/integration/test_connect_browser.py) writes each walk as data and
// asserts on what comes back; a new page needs new steps, not new JavaScript.
//
// The plan:
//   {"shots": "DIR",              where step screenshots go (created), NN-<name>.png
//    "viewport": {"width": 1000, "height": 700},
//    "timeout_ms": 15000,         per step
//    "storage": "FILE",           optional: the browser profile's cookies, loaded from FILE
//                                 when it exists and saved there after the walk, so one
//                                 walk continues another's session (a settings page)
//    "steps": [STEP, ...]}
// A step has a "name" and one action:
//   {"goto": URL}                 open URL (redirects followed)
//   {"click": SELECTOR}           click; waits for the page it leads to when it navigates
//                                 ("navigates": false for a click that does not)
//   {"check": SELECTOR}           tick a radio button or checkbox
//   {"fill": SELECTOR, "value": TEXT}     type into a field
//   {"select": SELECTOR, "value": VALUE}  choose an <option>
//   {"read": true}                only record the page as it is
// and optionally "hold": PATH — while the step runs, a navigation to a URL whose path
// starts with PATH is not delivered: its URL is recorded as "held" and the browser shows a
// stub page instead. That is how a test keeps an OAuth redirect (code and state) unspent
// to replay or tamper with it later. "shot": false skips the screenshot.
//
// The walk (stdout, one JSON document), one record per step that ran:
//   {"name", "url" (after the step), "status" (HTTP status of the page's last document
//    response, null when the step loaded none), "navigations": [{"url","status"}] (every
//    main-frame document response of the step, redirects included), "headers" (the last
//    document's security headers), "title", "h1", "text" (the body's visible text),
//    "ids": {id: {"tag","text","value","href","checked","disabled","label"}} (every
//    element with an id; label: the text of a form control's <label>), "links": [{"text","href"}], "forms": [{"action","method","fields":[{"name",
//    "type","value"}]}], "held": URL|null, "screenshot": path|null, "error": null|text}
// plus "browser" (Chromium's version) and "error" (the first step's error, which also
// ends the walk). Exit status 0 when every step ran, 1 when one failed (the walk is still
// printed), 2 when the browser could not start.
//
// Chromium: /usr/bin/chromium (Debian's package, `make deps`), headless, --no-sandbox
// because tests run as root, where Chromium's setuid/namespace sandbox refuses to start.
// playwright-core never downloads a browser of its own (none can be fetched here).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.HSQB_CHROMIUM || '/usr/bin/chromium';
const TEXT_MAX = 8000; // characters of a page's visible text kept in the walk
const ID_TEXT_MAX = 600;
const SECURITY_HEADERS = ['content-security-policy', 'x-frame-options', 'referrer-policy',
    'cache-control', 'x-content-type-options', 'content-type'];

function readPlan(arg) {
    const raw = !arg || arg === '-' ? readFileSync(0, 'utf8') : readFileSync(arg, 'utf8');
    const plan = JSON.parse(raw);
    if (!Array.isArray(plan.steps))
        throw new Error('the plan needs "steps": [...]');
    return plan;
}

// Everything a test may want to assert on, read inside the page.
function snapshot([textMax, idTextMax]) {
    const clip = (s, n) => (s || '').replace(/\s+/g, ' ').trim().slice(0, n);
    const ids = {};
    for (const el of document.querySelectorAll('[id]')) {
        ids[el.id] = {
            tag: el.tagName.toLowerCase(),
            text: clip(el.innerText, idTextMax),
            value: 'value' in el ? el.value : null,
            href: el.href || null,
            checked: 'checked' in el ? el.checked : null,
            disabled: 'disabled' in el ? el.disabled : null,
            label: el.labels && el.labels.length ? clip(el.labels[0].innerText, idTextMax) : null,
        };
    }
    const h1 = document.querySelector('h1');
    return {
        title: document.title,
        h1: h1 ? clip(h1.innerText, idTextMax) : null,
        text: document.body ? document.body.innerText.slice(0, textMax) : '',
        ids,
        links: [...document.querySelectorAll('a[href]')].map(a => ({ text: clip(a.innerText, 200),
            href: a.href })),
        forms: [...document.forms].map(f => ({
            action: f.action, method: (f.method || 'get').toLowerCase(),
            fields: [...f.elements].filter(e => e.name).map(e => ({ name: e.name, type: e.type,
                value: e.value })),
        })),
    };
}

async function act(page, step, timeout) {
    if (step.goto !== undefined) {
        await page.goto(step.goto, { waitUntil: 'load', timeout });
    } else if (step.click !== undefined) {
        const el = await page.waitForSelector(step.click, { state: 'visible', timeout });
        if (step.navigates === false) {
            await el.click({ timeout });
            return;
        }
        const nav = page.waitForEvent('framenavigated', { predicate: f => f === page.mainFrame(),
            timeout });
        await el.click({ timeout });
        await nav;
        await page.waitForLoadState('load', { timeout });
    } else if (step.check !== undefined) {
        await page.check(step.check, { timeout });
    } else if (step.fill !== undefined) {
        await page.fill(step.fill, String(step.value ?? ''), { timeout });
    } else if (step.select !== undefined) {
        await page.selectOption(step.select, String(step.value ?? ''), { timeout });
    } else if (!step.read) {
        throw new Error('step "' + step.name + '" has no action (goto, click, check, fill, ' +
            'select, read)');
    }
}

async function main() {
    const plan = readPlan(process.argv[2]);
    const timeout = plan.timeout_ms || 15000;
    const shots = plan.shots || null;
    if (shots)
        mkdirSync(shots, { recursive: true });
    let browser;
    try {
        browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
            args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    } catch (e) {
        process.stdout.write(JSON.stringify({ browser: null, steps: [],
            error: 'cannot start ' + CHROMIUM + ': ' + e.message }) + '\n');
        return 2;
    }
    const walk = { browser: browser.version(), steps: [], error: null };
    const page = await browser.newPage({ viewport: plan.viewport || { width: 1000, height: 700 },
        storageState: plan.storage && existsSync(plan.storage) ? plan.storage : undefined });
    let navs = [], last = null, hold = null, held = null;
    page.on('response', r => {
        const rq = r.request();
        if (rq.isNavigationRequest() && rq.frame() === page.mainFrame()) {
            navs.push({ url: r.url(), status: r.status() });
            last = r;
        }
    });
    // A step's "hold": the browser's own redirect hops never reach a router, so while a
    // step holds, its document requests are fetched here without following redirects, and
    // a redirect to the held path ends in the stub page instead.
    const stub = '<!doctype html><title>Held by the test</title><h1>Held by the test</h1>';
    await page.route(() => hold !== null, async route => {
        const rq = route.request();
        if (!rq.isNavigationRequest() || rq.frame() !== page.mainFrame())
            return route.continue();
        const held_here = new URL(rq.url()).pathname.startsWith(hold) ? rq.url() : null;
        if (held_here) {
            held = held_here;
            return route.fulfill({ status: 200, contentType: 'text/html', body: stub });
        }
        const resp = await route.fetch({ maxRedirects: 0 });
        const loc = resp.headers()['location'];
        if (resp.status() >= 300 && resp.status() < 400 && loc) {
            const to = new URL(loc, rq.url());
            if (to.pathname.startsWith(hold)) {
                navs.push({ url: rq.url(), status: resp.status() });
                held = to.href;
                return route.fulfill({ status: 200, contentType: 'text/html', body: stub });
            }
        }
        return route.fulfill({ response: resp });
    });
    let n = 0;
    for (const step of plan.steps) {
        n += 1;
        const rec = { name: step.name || 'step' + n, url: null, status: null, navigations: [],
            headers: {}, held: null, screenshot: null, error: null };
        navs = [];
        last = null;
        hold = step.hold || null;
        held = null;
        try {
            await act(page, step, timeout);
        } catch (e) {
            rec.error = e.message.split('\n')[0];
        }
        hold = null;
        rec.held = held;
        rec.navigations = navs;
        if (last) {
            rec.status = last.status();
            const h = await last.allHeaders().catch(() => ({}));
            for (const k of SECURITY_HEADERS)
                if (h[k] !== undefined)
                    rec.headers[k] = h[k];
        }
        rec.url = page.url();
        try {
            Object.assign(rec, await page.evaluate(snapshot, [TEXT_MAX, ID_TEXT_MAX]));
        } catch (e) {
            rec.error = rec.error || 'cannot read the page: ' + e.message.split('\n')[0];
        }
        if (shots && step.shot !== false) {
            const file = join(shots, String(n).padStart(2, '0') + '-' +
                rec.name.replace(/[^A-Za-z0-9_-]+/g, '_') + '.png');
            try {
                await page.screenshot({ path: file });
                rec.screenshot = file;
            } catch (e) {
                rec.error = rec.error || 'screenshot: ' + e.message.split('\n')[0];
            }
        }
        walk.steps.push(rec);
        if (rec.error) {
            walk.error = rec.name + ': ' + rec.error;
            break;
        }
    }
    if (plan.storage)
        await page.context().storageState({ path: plan.storage });
    await browser.close();
    process.stdout.write(JSON.stringify(walk) + '\n');
    return walk.error ? 1 : 0;
}

main().then(code => { process.exitCode = code; }, e => {
    process.stdout.write(JSON.stringify({ browser: null, steps: [], error: String(e.stack || e) })
        + '\n');
    process.exitCode = 2;
});
