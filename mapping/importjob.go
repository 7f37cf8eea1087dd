package mapping

import (
	"time"
)

// Import jobs: an administrator's upload, kept in the store so that any replica can show
// its progress and report and apply it (the console runs behind a load balancer without
// sticky sessions). A job belongs to the administrator who uploaded it; the store hides it
// from everybody else and once it expires. Jobs are working state of the console, not
// part of the mapping, so they are not audited: what an apply changes is.

// JobState is where an import job is.
type JobState string

// States of an import job.
const (
	JobPreviewing JobState = "previewing" // the dry run is running
	JobPreviewed  JobState = "previewed"  // the dry run's report is ready
	JobApplying   JobState = "applying"   // the apply is running
	JobApplied    JobState = "applied"    // the apply wrote the changes
	JobFailed     JobState = "failed"     // the import could not run; Error says why
)

func (s JobState) valid() bool {
	switch s {
	case JobPreviewing, JobPreviewed, JobApplying, JobApplied, JobFailed:
		return true
	}
	return false
}

// ImportJob is one uploaded file on its way through dry run and apply.
type ImportJob struct {
	ID       string // random; made by CreateImportJob
	Owner    string // the account id of the administrator who uploaded it
	FileName string // as uploaded, for the page
	Relink   bool   // ImportOptions.Relink of the dry run and the apply
	State    JobState
	// Done and Total are the lines done so far of the running dry run or apply.
	Done, Total int
	// Report is the dry run's (previewed) or the apply's (applied) report; read only
	// with JobReport.
	Report *ImportReport
	// Digest is the Digest of the report the administrator previewed, which an apply
	// must repeat (ImportOptions.Expect).
	Digest string
	// Error is why a failed job failed, for the administrator (no secrets).
	Error string
	// Data is the uploaded file; read only with JobData.
	Data                            []byte
	CreatedAt, UpdatedAt, ExpiresAt time.Time
}

// JobParts says which large parts of a job a read returns.
type JobParts int

// Parts of a job.
const (
	JobReport JobParts = 1 << iota
	JobData
)

// maxJobFileName bounds the file name kept with a job.
const maxJobFileName = 255

func validateJob(j ImportJob) error {
	if !idPattern.MatchString(j.Owner) {
		return invalid("owner", "must be an account id")
	}
	if !j.State.valid() {
		return invalid("state", "unknown import job state %q", j.State)
	}
	if len(j.FileName) > maxJobFileName {
		return invalid("file_name", "at most %d bytes", maxJobFileName)
	}
	if len(j.Data) > MaxImportBytes {
		return invalid("file", "larger than %d MiB", MaxImportBytes>>20)
	}
	if j.ExpiresAt.IsZero() {
		return invalid("expires_at", "is required")
	}
	return nil
}
