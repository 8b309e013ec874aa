// sifcheck: hpcc's test oracle built on the reference SIF library
// (Debian's golang-github-sylabs-sif-dev, built offline by ../build.sh).
//
//	sifcheck list FILE.sif
//	    Load FILE with the reference loader and print a canonical JSON listing:
//	    header fields and every used descriptor (partition, signature, crypto
//	    message and SBOM extras, integrity fields, SHA-256 of the data).
//	    Exit 1 when the reference refuses the file.
//	sifcheck create OUT.sif [-deterministic] [-time UNIX] [-id UUID] [-launch S] OBJ...
//	    Write OUT with the reference writer. OBJ is TYPE:NAME:PATH with TYPE one
//	    of deffile, json, generic, envvar, labels; or part:FS:PART:ARCH:NAME:PATH
//	    with FS and PART as numbers (1 = squashfs, 2 = primary system).
//	sifcheck siftool list|info|header|dump ...
//	    The reference siftool commands themselves (pkg/siftool), for comparing views.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/sylabs/sif/v2/pkg/sif"
	"github.com/sylabs/sif/v2/pkg/siftool"
)

type partJSON struct {
	FsType   int32  `json:"fsType"`
	PartType int32  `json:"partType"`
	Arch     string `json:"arch"`
}

type sigJSON struct {
	Hash        string `json:"hash"`
	Fingerprint string `json:"fingerprint"`
}

type descJSON struct {
	ID            uint32            `json:"id"`
	GroupID       uint32            `json:"groupId"`
	LinkedID      uint32            `json:"linkedId"`
	LinkedIsGroup bool              `json:"linkedIsGroup"`
	DataType      int32             `json:"dataType"`
	DataTypeName  string            `json:"dataTypeName"`
	Offset        int64             `json:"offset"`
	Size          int64             `json:"size"`
	CreatedAt     int64             `json:"createdAt"`
	ModifiedAt    int64             `json:"modifiedAt"`
	NameHex       string            `json:"nameHex"`
	RelativeID    uint32            `json:"relativeId"`
	UID           int64             `json:"uid"`
	GID           int64             `json:"gid"`
	ExtraHex      string            `json:"extraHex"`
	Partition     *partJSON         `json:"partition,omitempty"`
	Signature     *sigJSON          `json:"signature,omitempty"`
	CryptoMessage map[string]string `json:"cryptoMessage,omitempty"`
	SBOM          string            `json:"sbom,omitempty"`
	DataSHA256    string            `json:"dataSha256"`
}

type listJSON struct {
	LaunchScriptHex   string     `json:"launchScriptHex"`
	Version           string     `json:"version"`
	Arch              string     `json:"arch"`
	ID                string     `json:"id"`
	CreatedAt         int64      `json:"createdAt"`
	ModifiedAt        int64      `json:"modifiedAt"`
	DescriptorsFree   int64      `json:"descriptorsFree"`
	DescriptorsTotal  int64      `json:"descriptorsTotal"`
	DescriptorsOffset int64      `json:"descriptorsOffset"`
	DescriptorsSize   int64      `json:"descriptorsSize"`
	DataOffset        int64      `json:"dataOffset"`
	DataSize          int64      `json:"dataSize"`
	Primary           uint32     `json:"primary"`
	PrimaryError      string     `json:"primaryError,omitempty"`
	Descriptors       []descJSON `json:"descriptors"`
}

func die(code int, format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "sifcheck: "+format+"\n", a...)
	os.Exit(code)
}

// integrityFields decodes the reference's integrity stream of a descriptor:
// type(4) used(1) relativeID(4) linkedID(4) size(8) createdAt(8) uid(8) gid(8) name(128) extra(384).
func integrityFields(d sif.Descriptor, out *descJSON) {
	b, err := io.ReadAll(d.GetIntegrityReader())
	if err != nil || len(b) != 4+1+4+4+8+8+8+8+128+384 {
		die(1, "integrity reader of object %d: %v (%d bytes)", d.ID(), err, len(b))
	}
	out.RelativeID = binary.LittleEndian.Uint32(b[5:9])
	out.UID = int64(binary.LittleEndian.Uint64(b[29:37]))
	out.GID = int64(binary.LittleEndian.Uint64(b[37:45]))
	out.ExtraHex = hex.EncodeToString(b[45+128:])
}

func list(path string) {
	f, err := sif.LoadContainerFromPath(path, sif.OptLoadWithFlag(os.O_RDONLY))
	if err != nil {
		die(1, "load: %v", err)
	}
	defer f.UnloadContainer()
	out := listJSON{
		LaunchScriptHex:   hex.EncodeToString([]byte(f.LaunchScript())),
		Version:           f.Version(),
		Arch:              f.PrimaryArch(),
		ID:                f.ID(),
		CreatedAt:         f.CreatedAt().Unix(),
		ModifiedAt:        f.ModifiedAt().Unix(),
		DescriptorsFree:   f.DescriptorsFree(),
		DescriptorsTotal:  f.DescriptorsTotal(),
		DescriptorsOffset: f.DescriptorsOffset(),
		DescriptorsSize:   f.DescriptorsSize(),
		DataOffset:        f.DataOffset(),
		DataSize:          f.DataSize(),
		Descriptors:       []descJSON{},
	}
	if p, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys)); err == nil {
		out.Primary = p.ID()
	} else {
		out.PrimaryError = err.Error()
	}
	var loopErr error
	f.WithDescriptors(func(d sif.Descriptor) bool {
		link, isGroup := d.LinkedID()
		dj := descJSON{
			ID: d.ID(), GroupID: d.GroupID(), LinkedID: link, LinkedIsGroup: isGroup,
			DataType: int32(d.DataType()), DataTypeName: d.DataType().String(),
			Offset: d.Offset(), Size: d.Size(),
			CreatedAt: d.CreatedAt().Unix(), ModifiedAt: d.ModifiedAt().Unix(),
			NameHex: hex.EncodeToString([]byte(d.Name())),
		}
		integrityFields(d, &dj)
		switch d.DataType() {
		case sif.DataPartition:
			fs, pt, arch, err := d.PartitionMetadata()
			if err != nil {
				loopErr = err
				return true
			}
			dj.Partition = &partJSON{FsType: int32(fs), PartType: int32(pt), Arch: arch}
		case sif.DataSignature:
			ht, fp, err := d.SignatureMetadata()
			s := &sigJSON{Fingerprint: strings.ToUpper(hex.EncodeToString(fp))}
			if err != nil {
				s.Hash = "error: " + err.Error()
			} else {
				s.Hash = ht.String()
			}
			dj.Signature = s
		case sif.DataCryptoMessage:
			ft, mt, err := d.CryptoMessageMetadata()
			if err != nil {
				loopErr = err
				return true
			}
			dj.CryptoMessage = map[string]string{"format": ft.String(), "message": mt.String()}
		case sif.DataSBOM:
			sf, err := d.SBOMMetadata()
			if err != nil {
				loopErr = err
				return true
			}
			dj.SBOM = sf.String()
		}
		data, err := d.GetData()
		if err != nil {
			loopErr = fmt.Errorf("reading object %d: %w", d.ID(), err)
			return true
		}
		sum := sha256.Sum256(data)
		dj.DataSHA256 = hex.EncodeToString(sum[:])
		out.Descriptors = append(out.Descriptors, dj)
		return false
	})
	if loopErr != nil {
		die(1, "%v", loopErr)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		die(1, "encode: %v", err)
	}
}

var dataTypes = map[string]sif.DataType{
	"deffile": sif.DataDeffile, "json": sif.DataGenericJSON, "generic": sif.DataGeneric,
	"envvar": sif.DataEnvVar, "labels": sif.DataLabels,
}

func create(args []string) {
	fl := flag.NewFlagSet("create", flag.ExitOnError)
	det := fl.Bool("deterministic", false, "zero ID and zero time")
	unix := fl.Int64("time", 0, "creation time (unix seconds)")
	id := fl.String("id", "", "image UUID")
	launch := fl.String("launch", "#!/usr/bin/env run-singularity\n", "launch script")
	if len(args) < 1 {
		die(2, "usage: sifcheck create OUT.sif [flags] OBJ...")
	}
	out := args[0]
	if err := fl.Parse(args[1:]); err != nil {
		die(2, "%v", err)
	}
	opts := []sif.CreateOpt{sif.OptCreateWithLaunchScript(*launch)}
	if *det {
		opts = append(opts, sif.OptCreateDeterministic())
	}
	if *unix != 0 {
		opts = append(opts, sif.OptCreateWithTime(time.Unix(*unix, 0)))
	}
	if *id != "" {
		opts = append(opts, sif.OptCreateWithID(*id))
	}
	var dis []sif.DescriptorInput
	for _, spec := range fl.Args() {
		parts := strings.Split(spec, ":")
		var di sif.DescriptorInput
		var err error
		if parts[0] == "part" && len(parts) == 6 {
			fs, _ := strconv.Atoi(parts[1])
			pt, _ := strconv.Atoi(parts[2])
			data, rerr := os.ReadFile(parts[5])
			if rerr != nil {
				die(1, "%v", rerr)
			}
			di, err = sif.NewDescriptorInput(sif.DataPartition, bytes.NewReader(data),
				sif.OptPartitionMetadata(sif.FSType(fs), sif.PartType(pt), parts[3]), sif.OptObjectName(parts[4]))
		} else if t, ok := dataTypes[parts[0]]; ok && len(parts) == 3 {
			data, rerr := os.ReadFile(parts[2])
			if rerr != nil {
				die(1, "%v", rerr)
			}
			di, err = sif.NewDescriptorInput(t, bytes.NewReader(data), sif.OptObjectName(parts[1]))
		} else {
			die(2, "bad object spec %q", spec)
		}
		if err != nil {
			die(1, "descriptor %q: %v", spec, err)
		}
		dis = append(dis, di)
	}
	opts = append(opts, sif.OptCreateWithDescriptors(dis...))
	f, err := sif.CreateContainerAtPath(out, opts...)
	if err != nil {
		die(1, "create: %v", err)
	}
	if err := f.UnloadContainer(); err != nil {
		die(1, "close: %v", err)
	}
}

func runSiftool(args []string) {
	root := &cobra.Command{Use: "siftool", SilenceUsage: true, SilenceErrors: true}
	if err := siftool.AddCommands(root); err != nil {
		die(1, "%v", err)
	}
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		die(1, "%v", err)
	}
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "siftool" {
		runSiftool(os.Args[2:])
		return
	}
	if len(os.Args) >= 3 && os.Args[1] == "list" {
		list(os.Args[2])
		return
	}
	if len(os.Args) >= 3 && os.Args[1] == "create" {
		create(os.Args[2:])
		return
	}
	die(2, "usage: sifcheck list FILE.sif | sifcheck create OUT.sif [flags] OBJ... | sifcheck siftool ...")
}
