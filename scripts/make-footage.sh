#!/usr/bin/env bash
# make-footage.sh OUT_DIR [LARGE_MB]
#
# Generates real sample footage laid out as a docked body-worn camera shows
# it, for the demo, tests and benchmarks:
#
#   OUT_DIR/DCIM/100MEDIA/VID_0001.MP4   6 s   \
#                         VID_0001.NMEA       GPS track for VID_0001 (1 Hz, GPRMC+GPGGA)
#                         VID_0002.MP4   4 s   } 1280x720 30 fps H.264 (libx264 veryfast)
#                         VID_0002.JSON       metadata sidecar for VID_0002
#                         VID_0003.MP4   8 s   } + AAC sine tone, creation_time set
#                         VID_0004.MP4   3 s   /
#                         VID_0005.MP4   the large recording: at least LARGE_MB MiB
#
# LARGE_MB defaults to 256; 0 leaves the large recording out.
#
# How the large recording is made: a 10 s segment is encoded once at a
# constant 8 Mbit/s (a body camera's upper rate; x264 nal-hrd=cbr pads with
# filler NAL units, so the size is predictable), and that segment is then
# remuxed N times in a row with `ffmpeg -stream_loop N -c copy`, which
# rewrites timestamps so the result is one continuous, valid MP4 (about 4.5
# minutes per 256 MiB) without encoding it all. It decodes cleanly end to end.
#
# Files are deterministic for a given OUT_DIR name and FOOTAGE_START: the
# picture's hue and the tone's pitch derive from the folder name (the
# camera's serial), so two cameras never produce identical files. Each file's
# creation_time is its recording start; its mtime (and its sidecar's) is its
# recording end, as a camera leaves them. Recordings follow each other with
# gaps of some minutes, starting at FOOTAGE_START (anything `date -d`
# accepts; default: three hours ago, to the minute).
#
# Installs ffmpeg with apt-get if it is missing. Takes well under 30 s with
# the defaults on two cores.
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR [LARGE_MB]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
OUT=$1
LARGE_MB=${2:-256}
[[ $LARGE_MB =~ ^[0-9]+$ ]] || { echo "make-footage: LARGE_MB must be a whole number of MiB, got '$LARGE_MB'" >&2; exit 2; }

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  echo "make-footage: installing ffmpeg" >&2
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; }
fi

MEDIA=$OUT/DCIM/100MEDIA
mkdir -p "$MEDIA"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

SERIAL=$(basename "$(cd "$OUT" && pwd)")
SEED=$(printf '%s' "$SERIAL" | cksum | cut -d' ' -f1)
HUE=$((SEED % 360))
TONE=$((300 + SEED % 600))
START=$(date -u -d "${FOOTAGE_START:-3 hours ago}" +%s)
START=$((START - START % 60))

FF=(ffmpeg -hide_banner -nostdin -loglevel error -y)
# Bit-exact output and no metadata but what we set: same inputs, same bytes.
BITEXACT=(-fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1)

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S.000000Z; }

# encode NAME SECONDS EPOCH [extra ffmpeg output options...]
encode() {
  local name=$1 secs=$2 at=$3; shift 3
  "${FF[@]}" \
    -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=$secs,hue=h=$HUE" \
    -f lavfi -i "sine=frequency=$TONE:sample_rate=48000:duration=$secs" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 60 "$@" \
    -c:a aac -b:a 96k -ac 1 \
    "${BITEXACT[@]}" -metadata creation_time="$(iso "$at")" \
    "$WORK/$name"
}

# nmea BODY: one sentence with its checksum (XOR of the bytes between $ and *).
nmea() {
  local s=$1 c=0 i o
  for ((i = 0; i < ${#s}; i++)); do
    printf -v o '%d' "'${s:i:1}"
    c=$((c ^ o))
  done
  printf '$%s*%02X\r\n' "$s" "$c"
}

# gps_track SECONDS EPOCH: a walk north-east from Pretoria's Church Square,
# one fix a second.
gps_track() {
  local secs=$1 at=$2 t hms dmy lat lon
  for ((t = 0; t < secs; t++)); do
    hms=$(date -u -d "@$((at + t))" +%H%M%S.00)
    dmy=$(date -u -d "@$((at + t))" +%d%m%y)
    # 25°44.8000'S + 0.0012'/s northward, 28°11.2600'E + 0.0015'/s eastward.
    lat=$(printf '25%02d.%04d' 44 $((8000 - 12 * t)))
    lon=$(printf '028%02d.%04d' 11 $((2600 + 15 * t)))
    nmea "GPRMC,$hms,A,$lat,S,$lon,E,0.8,45.0,$dmy,,,A"
    nmea "GPGGA,$hms,$lat,S,$lon,E,1,08,0.9,1339.0,M,25.1,M,,"
  done
}

at=$START
place() { # place NAME SECONDS: move into the camera folder, stamp mtime = end
  local name=$1 secs=$2
  mv "$WORK/$name" "$MEDIA/$name"
  touch -d "@$((at + secs))" "$MEDIA/$name"
}

clip=0
for secs in 6 4 8 3; do
  clip=$((clip + 1))
  name=$(printf 'VID_%04d.MP4' "$clip")
  encode "$name" "$secs" "$at"
  case $clip in
    1)
      gps_track "$secs" "$at" > "$WORK/VID_0001.NMEA"
      place VID_0001.NMEA "$secs"
      ;;
    2)
      cat > "$WORK/VID_0002.JSON" <<JSON
{
  "file": "VID_0002.MP4",
  "device_serial": "$SERIAL",
  "firmware": "sample-1.0",
  "recording_start": "$(iso "$at")",
  "recording_end": "$(iso $((at + secs)))",
  "duration_seconds": $secs,
  "video": {"codec": "h264", "width": 1280, "height": 720, "fps": 30},
  "audio": {"codec": "aac", "sample_rate": 48000, "channels": 1},
  "trigger": "manual",
  "event_markers": [{"offset_seconds": 1, "type": "bookmark"}]
}
JSON
      place VID_0002.JSON "$secs"
      ;;
  esac
  place "$name" "$secs"
  at=$((at + secs + 420 + 180 * clip)) # the next recording starts minutes later
done

if [ "$LARGE_MB" -gt 0 ]; then
  SEG=10
  encode seg.mp4 "$SEG" "$at" -b:v 8M -minrate 8M -maxrate 8M -bufsize 8M -x264-params nal-hrd=cbr
  seg_bytes=$(stat -c %s "$WORK/seg.mp4")
  want=$((LARGE_MB * 1024 * 1024))
  n=$(((want + seg_bytes - 1) / seg_bytes)) # segments needed to reach LARGE_MB
  "${FF[@]}" -stream_loop $((n - 1)) -i "$WORK/seg.mp4" -map 0 -c copy \
    "${BITEXACT[@]}" -metadata creation_time="$(iso "$at")" "$WORK/VID_0005.MP4"
  rm -f "$WORK/seg.mp4"
  place VID_0005.MP4 $((n * SEG))
fi

files=$(find "$MEDIA" -type f | wc -l)
bytes=$(find "$MEDIA" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
echo "make-footage: $MEDIA: $files files, $((bytes / 1024 / 1024)) MiB (camera $SERIAL, from $(iso "$START"))"
