// Command check copies a Docker build context exactly as Docker leaves it:
// the folder, less what its .dockerignore excludes, read with Docker's own
// pattern matcher; with -build it then runs the Dockerfile's go build line
// inside the copy, as the image's build stage does. The service's tests
// take their binary from it, and context_test.go checks both images'
// contexts. It is a module of its own so that the service's go.mod stays
// the standard library and pgx.
//
//	go run . -context ../../.. -out /tmp/ctx -build /tmp/server
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

func main() {
	context := flag.String("context", ".", "the build context: the folder docker build is given")
	ignore := flag.String("ignore", "", "the ignore file (default: the context's .dockerignore)")
	out := flag.String("out", "", "an empty or missing folder to copy the context into")
	build := flag.String("build", "", "then build the binary the Dockerfile builds, to this path")
	version := flag.String("version", "dev", "the build's VERSION argument")
	commit := flag.String("commit", "unknown", "the build's COMMIT argument")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "check: -out is required")
		os.Exit(2)
	}
	if *ignore == "" {
		*ignore = filepath.Join(*context, ".dockerignore")
	}
	patterns, err := readIgnore(*ignore)
	var size int64
	if err == nil {
		size, err = copyContext(*context, patterns, *out)
	}
	if err == nil && *build != "" {
		err = buildInContext(filepath.Join(*context, "Dockerfile"), *out, *version, *commit, *build)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		os.Exit(1)
	}
	fmt.Printf("context %s: %d bytes\n", *context, size)
}

// buildLine is the Dockerfile's go build command (its RUN line), with the
// build arguments filled in and the output moved to out.
func buildLine(dockerfile []byte, version, commit, out string) (string, error) {
	for _, line := range strings.Split(string(dockerfile), "\n") {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, " go build ") {
			cmd := strings.TrimPrefix(line, "RUN ")
			cmd = strings.NewReplacer("${VERSION}", version, "${COMMIT}", commit, "-o /out/server", "-o "+out).Replace(cmd)
			if !strings.Contains(cmd, "-o "+out) {
				return "", fmt.Errorf("the Dockerfile's build line has no -o /out/server: %s", line)
			}
			return cmd, nil
		}
	}
	return "", errors.New("no go build line in the Dockerfile")
}

// buildInContext runs the build line of the Dockerfile at path in the
// copied context dir, as the image's build stage runs it in /src. Docker
// reads the Dockerfile whether or not the context leaves it.
func buildInContext(path, dir, version, commit, out string) error {
	dockerfile, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	line, err := buildLine(dockerfile, version, commit, out)
	if err != nil {
		return err
	}
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = dir
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", line, err, output)
	}
	return nil
}

// readIgnore reads a .dockerignore as Docker does; a missing one excludes
// nothing.
func readIgnore(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ignorefile.ReadAll(f)
}

// copyContext copies every file of dir that patterns leave into out, and
// returns their total size. It walks as Docker's context archiver does
// (moby's archive.TarWithOptions): an excluded folder is skipped whole
// unless an exception pattern may reach inside it.
func copyContext(dir string, patterns []string, out string) (int64, error) {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return 0, err
	}
	var size int64
	parents := map[string]patternmatcher.MatchInfo{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		skip, info, err := pm.MatchesUsingParentResults(rel, parents[pathDir(rel)])
		if err != nil {
			return err
		}
		if d.IsDir() {
			parents[rel] = info
		}
		if skip {
			if !d.IsDir() || mayReachInside(pm, rel) {
				return nil
			}
			return filepath.SkipDir
		}
		target := filepath.Join(out, filepath.FromSlash(rel))
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			n, err := copyFile(path, target)
			size += n
			return err
		}
		return nil
	})
	return size, err
}

// pathDir is the slash-separated parent of rel ("" at the top).
func pathDir(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// mayReachInside reports whether an exception pattern (!path) could take
// back something inside the excluded folder dir.
func mayReachInside(pm *patternmatcher.PatternMatcher, dir string) bool {
	if !pm.Exclusions() {
		return false
	}
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(p.String()+"/", dir+"/") {
			return true
		}
	}
	return false
}

func copyFile(from, to string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return 0, err
	}
	src, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return 0, err
	}
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return n, err
}
