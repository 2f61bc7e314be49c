import { createHash } from 'node:crypto';
import express, { type Express, type Response } from 'express';
import {
  describeDiscount,
  describePrice,
  describeTrial,
  DomainError,
  InvitationClosedError,
} from '@gatehouse/domain';
import type { Logger } from 'pino';
import {
  commerceProductName,
  escapeHtml,
  type CommerceService,
  type JoinOffer,
} from '../services/commerce.service';

export type JoinRoutesOptions = {
  commerce: Pick<CommerceService, 'joinOfferOrThrow' | 'invitationUrl' | 'startCheckout'>;
  log: Logger;
  /** Origins Checkout redirects to (the form's `form-action`); Stripe's by default, plus a fake's in tests. */
  checkoutOrigins?: string[];
};

const STYLE = `
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f5f6f8;color:#1f2328}
main{max-width:560px;margin:40px auto;padding:32px;background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.1)}
h1{margin:0 0 8px;font-size:26px}.lead{color:#57606a;margin:0 0 24px}
ul{list-style:none;padding:0;margin:0}li{border:1px solid #d0d7de;border-radius:8px;padding:16px;margin:0 0 12px}
.product{font-weight:600}.price{font-size:20px;margin:4px 0}.trial,.promo{color:#1a7f37}
button{margin-top:8px;padding:10px 18px;border:0;border-radius:6px;background:#1a56db;color:#fff;font:600 16px system-ui,sans-serif;cursor:pointer}
label{display:block;margin:0 0 16px}input{padding:8px;width:100%;box-sizing:border-box;border:1px solid #d0d7de;border-radius:6px}
`;
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

function send(res: Response, status: number, html: string, formOrigins: string): void {
  res
    .status(status)
    .set({
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-security-policy':
        `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; img-src 'none'; base-uri 'none'; ` +
        `frame-ancestors 'none'; form-action 'self' ${formOrigins}`,
    })
    .send(html);
}

/** The invitation page: community, offers in words, trial, promo, and one button per price. */
export function renderOffer(offer: JoinOffer, token: string): string {
  const { link, catalog, promo } = offer;
  const community = catalog.community?.name ?? 'this community';
  const items = link.priceIds
    .map((id) => catalog.prices[id])
    .filter((p) => p !== undefined && p.active)
    .map((p) => {
      const trial = describeTrial(p.trialDays);
      return `<li data-price-id="${escapeHtml(p.priceId)}">
  <div class="product">${escapeHtml(commerceProductName(catalog, p.product))}</div>
  <div class="price">${escapeHtml(describePrice(p))}</div>
  ${trial ? `<div class="trial">${escapeHtml(trial)}</div>` : ''}
  <form method="post" action="/join/${encodeURIComponent(token)}/checkout">
    <input type="hidden" name="priceId" value="${escapeHtml(p.priceId)}">
    <button type="submit">Continue to payment</button>
  </form>
</li>`;
    })
    .join('\n');
  const promoLine = promo
    ? `<p class="promo">Code <strong>${escapeHtml(promo.code)}</strong>: ${escapeHtml(describeDiscount(promo))}</p>`
    : '';
  const left =
    link.maxUses !== undefined
      ? `<p class="lead">${link.maxUses - link.uses} of ${link.maxUses} places left.</p>`
      : '';
  return page(
    `Join ${community}`,
    `<h1>Join ${escapeHtml(community)}</h1>
<p class="lead">You have been invited. Choose an offer; payment is handled by Stripe.</p>
${promoLine}${left}<ul>${items}</ul>`,
  );
}

function closedPage(err: unknown): { status: number; html: string } {
  if (err instanceof InvitationClosedError) {
    const what = err.reason === 'EXPIRED' ? 'has expired' : 'has been used up';
    return {
      status: 410,
      html: page(
        'Invitation closed',
        `<h1>This invitation ${what}</h1><p class="lead">Ask the community for a new link.</p>`,
      ),
    };
  }
  if (err instanceof DomainError && err.code === 'NOT_FOUND') {
    return {
      status: 404,
      html: page(
        'Invitation not found',
        `<h1>Invitation not found</h1><p class="lead">Check the link you were given.</p>`,
      ),
    };
  }
  if (err instanceof DomainError && err.code === 'FORBIDDEN') {
    return {
      status: 403,
      html: page(
        'Invitation not for you',
        `<h1>This invitation is not for you</h1><p class="lead">${escapeHtml(err.message)}</p>`,
      ),
    };
  }
  if (err instanceof DomainError && (err.code === 'BAD_USER_INPUT' || err.code === 'CONFLICT')) {
    return {
      status: 409,
      html: page(
        'Cannot continue',
        `<h1>We could not start your payment</h1><p class="lead">${escapeHtml(err.message)}</p>`,
      ),
    };
  }
  const code = (err as { code?: unknown }).code;
  if (code === 'STRIPE_ERROR') {
    return {
      status: 502,
      html: page(
        'Payment unavailable',
        `<h1>Payment is unavailable right now</h1><p class="lead">Please try again in a moment.</p>`,
      ),
    };
  }
  return {
    status: 500,
    html: page(
      'Something went wrong',
      `<h1>Something went wrong</h1><p class="lead">Please try again later.</p>`,
    ),
  };
}

/**
 * `GET /join/:token` (the offer), `POST /join/:token/checkout` (starts Checkout without a bearer
 * token, as `startCheckout` with the invitation, and answers 303 to Stripe) and
 * `GET /join/:token/done` (where Checkout returns). Mount with `createApp({ extraRoutes })`.
 */
export function joinRoutes(options: JoinRoutesOptions): (app: Express) => void {
  const { commerce, log } = options;
  const formOrigins = [...new Set(options.checkoutOrigins ?? ['https://checkout.stripe.com'])].join(' ');
  return (app) => {
    app.get('/join/:token', async (req, res) => {
      const member = typeof req.query.member === 'string' && req.query.member ? req.query.member : undefined;
      try {
        const offer = await commerce.joinOfferOrThrow(req.params.token, member);
        send(res, 200, renderOffer(offer, req.params.token), formOrigins);
      } catch (err) {
        const { status, html } = closedPage(err);
        if (status >= 500) log.error({ err }, 'join page failed');
        send(res, status, html, formOrigins);
      }
    });

    app.post(
      '/join/:token/checkout',
      express.urlencoded({ extended: false, limit: '8kb' }),
      async (req, res) => {
        const token = req.params.token;
        const body = (req.body ?? {}) as Record<string, unknown>;
        const priceId = typeof body.priceId === 'string' ? body.priceId : '';
        const email = typeof body.email === 'string' && body.email.includes('@') ? body.email : undefined;
        try {
          const offer = await commerce.joinOfferOrThrow(token);
          const base = commerce.invitationUrl(token);
          const session = await commerce.startCheckout(null, {
            communityId: offer.link.communityId,
            priceId,
            invitationToken: token,
            ...(email && { email }),
            successUrl: `${base}/done`,
            cancelUrl: base,
          });
          res.redirect(303, session.url);
        } catch (err) {
          const { status, html } = closedPage(err);
          if (status >= 500) log.error({ err }, 'join checkout failed');
          send(res, status, html, formOrigins);
        }
      },
    );

    app.get('/join/:token/done', (_req, res) => {
      send(
        res,
        200,
        page(
          'Welcome',
          `<h1>Thank you</h1><p class="lead">Your payment is being confirmed. You can close this page.</p>`,
        ),
        formOrigins,
      );
    });
  };
}
