package audit

import "os"

// LogFiles lists the files a Logger with this File and MaxBackups leaves
// behind that exist now, oldest first: File.N … File.1, File.
func LogFiles(file string, maxBackups int) []string {
	var names []string
	for i := maxBackups; i >= 0; i-- {
		if st, err := os.Stat(backupName(file, i)); err == nil && !st.IsDir() {
			names = append(names, backupName(file, i))
		}
	}
	return names
}
