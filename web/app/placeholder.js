/*  Placeholders: a photo's ThumbHash (photo.thumbhash, base64, about 25
    bytes) painted at once into a small canvas, decoded by the reference
    code (npm thumbhash's thumbHashToRGBA, served as vendor/thumbhash.js),
    so a tile shows the photo's colours and shapes before its thumbnail
    arrives. A canvas, not an image: the page's Content-Security-Policy
    allows no data: images, and nothing needs to be fetched.
*/
import { thumbHashToRGBA } from './vendor/thumbhash.js';

//  The hash's bytes, or null when there is none or it is not base64
export function hashBytes(text) {
  if (typeof text !== 'string' || text === '') return null;
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch (_) {
    return null;
  }
}

//  A canvas painted with the photo's placeholder, or null without one.
//  Its pixels are thumbHashToRGBA's, at its size (at most 32 × 32); CSS
//  stretches it over the tile.
export function placeholder(photo, className = 'placeholder') {
  const bytes = hashBytes(photo && photo.thumbhash);
  if (!bytes || bytes.length < 5) return null;
  let image;
  try {
    image = thumbHashToRGBA(bytes);
  } catch (_) {
    return null;
  }
  const canvas = document.createElement('canvas');
  canvas.width = image.w;
  canvas.height = image.h;
  canvas.className = className;
  canvas.setAttribute('aria-hidden', 'true');
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(image.rgba), image.w, image.h), 0, 0);
  return canvas;
}
