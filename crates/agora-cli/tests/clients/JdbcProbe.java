// A JDBC client of Agora's PostgreSQL front, driven by crates/agora-cli/tests/it/pg.rs with
// the real pgjdbc driver (org.postgresql, Debian's libpostgresql-jdbc-java):
//
//   java -cp /usr/share/java/postgresql.jar JdbcProbe.java URL USER PASSWORD SUITE_FILE
//
// It does what a JDBC program and DBeaver's schema browser do (plain and prepared
// statements, typed getters, SQLSTATEs, DatabaseMetaData) and prints one line per check,
// `key<TAB>value`, for the Rust test to read. SUITE_FILE holds SQL statements separated by
// NUL characters (the OMOP suite); each is run and counted as answered or refused.
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class JdbcProbe {
    static void out(String key, Object value) {
        System.out.println(key + "\t" + value);
    }

    /** The SQLSTATE `sql` fails with, or "ok". */
    static String sqlstate(Connection conn, String sql) {
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            while (rs.next()) {}
            return "ok";
        } catch (SQLException e) {
            return e.getSQLState();
        }
    }

    static String columnTypes(ResultSetMetaData md) throws SQLException {
        List<String> types = new ArrayList<>();
        for (int i = 1; i <= md.getColumnCount(); i++) {
            types.add(md.getColumnTypeName(i));
        }
        return String.join(",", types);
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("sslmode", "disable");
        props.setProperty("ApplicationName", "JdbcProbe");
        try (Connection conn = DriverManager.getConnection(args[0], props)) {
            out("connected", conn.getCatalog());
            DatabaseMetaData meta = conn.getMetaData();
            out("product", meta.getDatabaseProductName() + " " + meta.getDatabaseProductVersion());

            // A plain Statement: an aggregate, counts typed int8.
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery(
                     "SELECT gender_concept_id, COUNT(*) AS n FROM person GROUP BY 1 ORDER BY 1")) {
                long rows = 0, smallest = Long.MAX_VALUE;
                while (rs.next()) {
                    rows++;
                    smallest = Math.min(smallest, rs.getLong("n"));
                }
                out("plain.types", columnTypes(rs.getMetaData()));
                out("plain.rows", rows);
                out("plain.min_count", smallest);
            }

            // A PreparedStatement with int, string and date parameters, run past pgjdbc's
            // prepare threshold (5) so the named server-side statement is used too.
            String prepared = "SELECT COUNT(*) AS n FROM condition_occurrence JOIN person USING (person_id)"
                + " WHERE year_of_birth >= ? AND CAST(gender_concept_id AS VARCHAR) <> ?"
                + " AND condition_start_date >= ?";
            try (PreparedStatement ps = conn.prepareStatement(prepared)) {
                List<Long> counts = new ArrayList<>();
                for (int i = 0; i < 6; i++) {
                    ps.setInt(1, 1800);
                    ps.setString(2, "0");
                    ps.setDate(3, java.sql.Date.valueOf("1990-01-01"));
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        counts.add(rs.getLong(1));
                    }
                }
                out("prepared.counts", counts.stream().distinct().count() == 1 ? counts.get(0) : counts);
                // A date past every row's: nothing counted (0 is shown, not suppressed).
                ps.setInt(1, 1800);
                ps.setString(2, "0");
                ps.setDate(3, java.sql.Date.valueOf("2999-01-01"));
                try (ResultSet rs = ps.executeQuery()) {
                    out("prepared.future", rs.next() ? "row" : "none");
                }
            }

            // Typed getters.
            String typed = "SELECT CAST(date_trunc('year', condition_start_date) AS DATE) AS d,"
                + " date_trunc('month', condition_start_date) AS ts, CAST(gender_concept_id AS VARCHAR) AS g,"
                + " COUNT(*) AS n, AVG(year_of_birth) AS a"
                + " FROM condition_occurrence JOIN person USING (person_id)"
                + " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(typed)) {
                int rows = 0;
                boolean typedOk = true;
                while (rs.next()) {
                    rows++;
                    java.sql.Date d = rs.getDate("d");
                    java.sql.Timestamp ts = rs.getTimestamp("ts");
                    String g = rs.getString("g");
                    long n = rs.getLong("n");
                    double a = rs.getDouble("a");
                    typedOk &= d != null && ts != null && g != null && n >= 10 && a > 1800 && a < 2100
                        && d.toLocalDate().getDayOfYear() == 1
                        && ts.toLocalDateTime().getDayOfMonth() == 1;
                }
                out("typed.types", columnTypes(rs.getMetaData()));
                out("typed.rows", rows);
                out("typed.ok", typedOk);
            }

            // What DBeaver and pooled applications do: read-only, no auto-commit (pgjdbc sends
            // BEGIN), and a fetch size (pgjdbc then reads the portal in chunks).
            conn.setReadOnly(true);
            conn.setAutoCommit(false);
            try (Statement st = conn.createStatement()) {
                st.setFetchSize(10);
                try (ResultSet rs = st.executeQuery(typed)) {
                    int rows = 0;
                    while (rs.next()) {
                        rows++;
                    }
                    out("fetch_size.rows", rows);
                }
            }
            conn.commit();
            conn.setAutoCommit(true);

            // Refusals carry their SQLSTATE; the connection goes on.
            out("error.per_person", sqlstate(conn, "SELECT person_id FROM person"));
            out("error.syntax", sqlstate(conn, "SELEC 1"));
            // A table of the release the permit does not grant, and one no release has: one
            // answer for both.
            out("error.unpermitted", sqlstate(conn, "SELECT COUNT(*) FROM observation"));
            out("error.unknown", sqlstate(conn, "SELECT COUNT(*) FROM no_such_table"));
            out("error.ddl", sqlstate(conn, "CREATE TABLE x (a int)"));

            // DatabaseMetaData, as DBeaver's schema browser asks it.
            List<String> schemas = new ArrayList<>();
            try (ResultSet rs = meta.getSchemas()) {
                while (rs.next()) {
                    schemas.add(rs.getString("TABLE_SCHEM"));
                }
            }
            out("meta.schemas", String.join(",", schemas));
            List<String> catalogs = new ArrayList<>();
            try (ResultSet rs = meta.getCatalogs()) {
                while (rs.next()) {
                    catalogs.add(rs.getString("TABLE_CAT"));
                }
            }
            out("meta.catalogs", String.join(",", catalogs));
            for (String schema : schemas) {
                List<String> tables = new ArrayList<>();
                try (ResultSet rs = meta.getTables(null, schema, "%", new String[] {"TABLE"})) {
                    while (rs.next()) {
                        tables.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME")
                            + ":" + rs.getString("TABLE_TYPE"));
                    }
                }
                out("meta.tables." + schema, String.join(",", tables));
            }
            List<String> everything = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, null, null, null)) {
                while (rs.next()) {
                    everything.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME"));
                }
            }
            out("meta.tables.all", String.join(",", everything));
            try (ResultSet rs = meta.getTables(null, null, "%", new String[] {"VIEW", "SYSTEM TABLE"})) {
                int n = 0;
                while (rs.next()) {
                    n++;
                }
                out("meta.tables.views", n);
            }
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, null, "%", "%")) {
                while (rs.next()) {
                    columns.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME") + "."
                        + rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME") + ":"
                        + rs.getInt("DATA_TYPE") + ":" + rs.getInt("ORDINAL_POSITION") + ":"
                        + rs.getString("IS_NULLABLE"));
                }
            }
            out("meta.columns", String.join(",", columns));
            List<String> personColumns = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, "demo", "person", "%birth%")) {
                while (rs.next()) {
                    personColumns.add(rs.getString("COLUMN_NAME"));
                }
            }
            out("meta.columns.filtered", String.join(",", personColumns));
            try (ResultSet rs = meta.getPrimaryKeys(null, "demo", "person")) {
                int n = 0;
                while (rs.next()) {
                    n++;
                }
                out("meta.primary_keys", n + ":" + rs.getMetaData().getColumnCount());
            }
            try (ResultSet rs = meta.getImportedKeys(null, "demo", "person")) {
                int n = 0;
                while (rs.next()) {
                    n++;
                }
                out("meta.imported_keys", n);
            }
            try (ResultSet rs = meta.getIndexInfo(null, "demo", "person", false, true)) {
                int n = 0;
                while (rs.next()) {
                    n++;
                }
                out("meta.indexes", n);
            }
            try (ResultSet rs = meta.getTypeInfo()) {
                int n = 0;
                while (rs.next()) {
                    n++;
                }
                out("meta.type_info", n >= 0);
            }

            // pgjdbc's lookup of a type it does not know (TypeInfoCache), a parameterised
            // catalogue query, prepared past the threshold: no such type, no error.
            String typeLookup = "SELECT n.nspname = ANY(current_schemas(true)), n.nspname, t.typname"
                + " FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n"
                + " ON t.typnamespace = n.oid WHERE t.oid = ?";
            try (PreparedStatement ps = conn.prepareStatement(typeLookup)) {
                // A Describe of the statement alone, before any execution: its one parameter.
                out("meta.type_lookup.parameters", ps.getParameterMetaData().getParameterCount());
            }
            try (PreparedStatement ps = conn.prepareStatement(typeLookup)) {
                int found = 0;
                for (int i = 0; i < 6; i++) {
                    ps.setInt(1, 99999);
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            found++;
                        }
                    }
                }
                out("meta.type_lookup", found);
            }

            // The OMOP suite, each question answered or refused with a SQLSTATE.
            String suite = Files.readString(Path.of(args[3]));
            int answered = 0, refused = 0;
            List<String> states = new ArrayList<>();
            for (String sql : suite.split("\u0000")) {
                if (sql.isBlank()) {
                    continue;
                }
                String state = sqlstate(conn, sql);
                if (state.equals("ok")) {
                    answered++;
                } else {
                    refused++;
                    states.add(state);
                }
            }
            out("suite", answered + " " + refused + " " + String.join(",", states));
        }
        out("done", true);
    }
}
